"""A node's side of ``ferry doctor --all``: answer each examination a manager asks for (see
``manager.doctor``), once, by posting this host's findings to that manager."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from ferry.agent.link import ManagerLink
from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.doctor.findings import Finding
from ferry.errors import FerryError
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.logs import DoctorRequest

log = logging.getLogger("ferry.doctor")


class DoctorAnswerer:
    def __init__(
        self,
        node_id: str,
        link: ManagerLink,
        view: ClusterView,
        examine: Callable[[], Awaitable[list[Finding]]],
        hostname: str = "",
    ) -> None:
        self._node_id = node_id
        self._hostname = hostname or node_id[:12]
        self._link = link
        self._view = view
        self._examine = examine
        self._working: dict[str, asyncio.Task[None]] = {}
        self._answered: set[str] = set()  # until the manager drops the request
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self._view.mirror.subscribe(self._changed)
        self._changed(frozenset())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await cancel_and_wait(list(self._working.values()))
        self._working.clear()

    def _changed(self, changed: frozenset[str]) -> None:
        if changed and not any(k.startswith(keys.DOCTOR_REQUESTS) for k in changed):
            return
        prefix = f"{keys.DOCTOR_REQUESTS}{self._node_id}/"
        wanted = {r.req_id: r for r in self._view.mirror.objects(prefix, DoctorRequest)}
        self._answered &= set(wanted)
        for req_id, request in wanted.items():
            if req_id not in self._working and req_id not in self._answered:
                self._answered.add(req_id)
                task = asyncio.get_running_loop().create_task(self._answer(request))
                self._working[req_id] = task
                task.add_done_callback(functools.partial(self._done, req_id))

    def _done(self, req_id: str, _task: asyncio.Task[None]) -> None:
        self._working.pop(req_id, None)

    async def _answer(self, request: DoctorRequest) -> None:
        """Examine and send; an examination that fails is itself the answer (the manager
        must never wait out a node that had something to say)."""
        try:
            findings = await self._examine()
        except FerryError as exc:
            log.warning("examination failed", extra=kv(error=exc))
            findings = [Finding(self._hostname, "doctor", self._hostname, "examination",
                                "completed", str(exc))]  # fmt: skip
        body = json.dumps([f.to_json() for f in findings]).encode()

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        try:
            await self._link.upload(request.manager, f"/v1/doctor/{request.req_id}", chunks())
        except FerryError as exc:
            log.warning("could not send findings", extra=kv(request=request.req_id[:12], error=exc))
