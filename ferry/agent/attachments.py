"""Clients attached to containers' output and stdin, through each monitor's attach socket.

Docker's ``run`` attaches before it starts the container; so an attach to a container that
is not running waits, and is connected between ``runc create`` and ``runc start``, when the
monitor's socket exists and the command has not written anything yet: nothing is missed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from ferry.errors import Conflict, FerryError
from ferry.model.container import Container, ContainerConfig
from ferry.runtime.monitor import MonitorPaths


class Attachments:
    def __init__(self, paths: Callable[[ContainerConfig], MonitorPaths]) -> None:
        self._paths = paths
        self._waiting: dict[str, list[asyncio.Future[socket.socket]]] = {}

    async def open(self, container: Container) -> socket.socket | None:
        """A connection to the container's attach socket (its output, and its stdin when
        open). For a container that is not running, wait for its start and connect before
        its command runs; None when it ended or was removed instead."""
        if container.running:
            return await self._connect(container)
        future: asyncio.Future[socket.socket] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(container.config.container_id, []).append(future)
        try:
            return await future
        except FerryError:
            return None

    async def _connect(self, container: Container) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        try:
            path = self._paths(container.config).attach_socket
            await asyncio.get_running_loop().sock_connect(sock, str(path))
        except OSError as exc:
            sock.close()
            raise Conflict(f"cannot attach to {container.config.name}: {exc}") from exc
        return sock

    async def connect_waiting(self, container: Container) -> None:
        """Called by the start, after the monitor is up and before the command runs."""
        for future in self._waiting.pop(container.config.container_id, []):
            if future.done():
                continue
            try:
                future.set_result(await self._connect(container))
            except Conflict as exc:
                future.set_exception(exc)

    def fail(self, cid: str) -> None:
        """The start failed: the waiting clients get nothing."""
        for future in self._waiting.pop(cid, []):
            if not future.done():
                future.set_exception(Conflict("the container did not start"))
