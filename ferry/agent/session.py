"""The agent's session: heartbeats that keep this node Ready, and the stream that keeps the
local mirror of cluster state current. Both reconnect on their own, forever, with back-off;
while the managers are unreachable the host keeps running what it has (nothing is torn down
for lack of news)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ferry.agent.link import ManagerLink
from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError, Forbidden
from ferry.manager.wire import HeartbeatReply
from ferry.model.mirror import Mirror
from ferry.model.node import HEARTBEAT_S
from ferry.model.root_rotation import Issuer, NodeTLS

log = logging.getLogger("ferry.agent.session")


class AgentSession:
    def __init__(
        self,
        link: ManagerLink,
        mirror: Mirror,
        on_managers: Callable[[list[str]], None],
        *,
        on_role: Callable[[str], None] = lambda _role: None,
        images: Callable[[], list[str]] = list,
        ports: Callable[[], list[str]] = list,
        wg_key: Callable[[], str] = str,
        tls: Callable[[], NodeTLS] = NodeTLS,
        on_tls: Callable[[str, Issuer], None] = lambda _trust, _issuer: None,
    ) -> None:
        self._tls = tls
        self._on_tls = on_tls
        self._images = images
        self._ports = ports
        self._wg_key = wg_key
        self._link = link
        self._mirror = mirror
        self._on_managers = on_managers
        self._on_role = on_role
        self._tasks: list[asyncio.Task[None]] = []
        self.last_error = ""

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._beat()), loop.create_task(self._follow())]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []

    async def _beat(self) -> None:
        while True:
            try:
                beat = {
                    "images": self._images(),
                    "ports": self._ports(),
                    "wg_key": self._wg_key(),
                    "tls": asdict(self._tls()),
                }
                reply = HeartbeatReply.model_validate(
                    await self._link.call("POST", "/v1/heartbeat", beat)
                )
                self._link.set_managers(reply.managers)
                self._on_managers(reply.managers)
                if reply.role:
                    self._on_role(reply.role)
                self._on_tls(reply.trust_pem, Issuer(reply.issuer_subject, reply.issuer_key))
                self.last_error = ""
            except Forbidden as exc:
                # said once per cause: a removed node is refused at every beat until it leaves
                if str(exc) != self.last_error:
                    log.error("manager refused this node", extra=kv(error=exc))
                self.last_error = str(exc)
            except FerryError as exc:
                if str(exc) != self.last_error:
                    log.warning("heartbeat failed", extra=kv(error=exc))
                self.last_error = str(exc)
            except Exception as exc:  # a dead heartbeat would make this node Down for good
                self.last_error = str(exc)
                log.exception("heartbeat crashed; beating on")
            await asyncio.sleep(HEARTBEAT_S)

    async def _follow(self) -> None:
        delay_s = 0.2
        while True:
            try:
                async for message in self._link.stream("/v1/session"):
                    self._apply(message)
                    delay_s = 0.2
            except FerryError as exc:
                log.warning("session stream lost", extra=kv(error=exc, retry_s=delay_s))
            except Exception:  # a dead follower would leave this node deaf for good: resync
                log.exception("session stream crashed; opening a new one")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 3.0)

    def _apply(self, message: dict[str, Any]) -> None:
        """Apply one stream message; a snapshot replaces the mirror, so a new stream resyncs
        fully whatever was missed while none was open."""
        kind = message.get("t")
        if kind == "ping":
            return
        items = [(i["k"], i["v"], i["r"]) for i in message.get("items", [])]
        if kind == "snapshot":
            self._mirror.reset([(k, v, r) for k, v, r in items if v is not None], message["rev"])
        elif kind == "event":
            self._mirror.apply(items)
