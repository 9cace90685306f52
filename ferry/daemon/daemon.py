"""ferryd wired together: local API on a root-only unix socket, swarm membership, and the
host's reconcilers; a clean stop on SIGTERM/SIGINT that leaves containers running."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from aiohttp import web

from ferry.api.routes.swarm import SwarmRoutes
from ferry.api.routes.system import SystemRoutes
from ferry.api.server import make_app
from ferry.daemon.config import DaemonConfig
from ferry.daemon.logs import kv
from ferry.daemon.swarm import SwarmController
from ferry.errors import FerryError, Unavailable
from ferry.kernel.thread import KernelThread

log = logging.getLogger("ferry.daemon")


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.kernel = KernelThread()
        self.swarm = SwarmController(config, self.kernel)
        self.app = make_app()
        SystemRoutes(config, self.swarm, self._counts).register(self.app)
        SwarmRoutes(self.swarm).register(self.app)
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()

    def _counts(self) -> dict[str, int]:
        return {}

    def _claim_socket(self) -> None:
        path = self.config.socket_path
        if not path.exists():
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # left behind by a ferryd that died
            return
        finally:
            probe.close()
        raise Unavailable(f"another ferryd already serves {path}")

    async def run(self) -> None:
        cfg = self.config
        for directory in (cfg.state_dir, cfg.run_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._claim_socket()
        cfg.pid_path.write_text(str(os.getpid()))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        try:
            await self.swarm.restore()
        except FerryError as exc:
            # keep serving the local API so the operator can see the error and leave --force
            log.error("could not restore swarm membership", extra=kv(error=exc))
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        old_umask = os.umask(0o177)  # the socket is root-only from the moment it exists
        try:
            site = web.UnixSite(self._runner, str(cfg.socket_path))
            await site.start()
        finally:
            os.umask(old_umask)
        log.info("ferryd ready", extra=kv(socket=cfg.socket_path, hostname=cfg.node_hostname))
        await self._stop.wait()
        log.info("ferryd stopping")
        await self._runner.cleanup()
        await self.swarm.shutdown()
        self.kernel.shutdown()
        cfg.socket_path.unlink(missing_ok=True)
        cfg.pid_path.unlink(missing_ok=True)
        log.info("ferryd stopped")
