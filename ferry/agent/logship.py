"""Answers managers' requests for task logs (see manager.logs): reads this node's task
containers' logs and streams them, line by line, to the manager that asked."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ferry.agent.containers import ContainerService
from ferry.agent.link import ManagerLink
from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.logs import LogRequest
from ferry.runtime import logs as logfile

log = logging.getLogger("ferry.agent.logs")

FOLLOW_POLL_S = 0.1


def _tail_offset(path: Path, lines: int) -> int:
    if lines < 0:
        return 0
    data = path.read_bytes()
    if lines == 0:
        return len(data)
    kept = data.splitlines(keepends=True)[-lines:]
    return len(data) - sum(len(line) for line in kept)


class LogShipper:
    def __init__(
        self, node_id: str, link: ManagerLink, view: ClusterView, containers: ContainerService
    ) -> None:
        self._node_id = node_id
        self._link = link
        self._view = view
        self._containers = containers
        self._shipping: dict[str, asyncio.Task[bool]] = {}
        # requests answered whose key the manager has not deleted yet: never answered twice
        self._answered: set[str] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self._view.mirror.subscribe(self._changed)
        self._changed(frozenset())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await cancel_and_wait(list(self._shipping.values()))
        self._shipping.clear()

    def _changed(self, changed: frozenset[str]) -> None:
        if changed and not any(k.startswith(keys.LOG_REQUESTS) for k in changed):
            return
        prefix = f"{keys.LOG_REQUESTS}{self._node_id}/"
        wanted = {r.req_id: r for r in self._view.mirror.objects(prefix, LogRequest)}
        for req_id in [r for r in self._shipping if r not in wanted]:
            self._shipping.pop(req_id).cancel()  # the manager stopped listening
        self._answered &= set(wanted)
        for req_id, request in wanted.items():
            if req_id not in self._shipping and req_id not in self._answered:
                task = asyncio.get_running_loop().create_task(self._ship(request))
                self._shipping[req_id] = task
                task.add_done_callback(self._done(req_id))

    def _done(self, req_id: str) -> Callable[[asyncio.Task[bool]], None]:
        def forget(task: asyncio.Task[bool]) -> None:
            if self._shipping.get(req_id) is task:
                del self._shipping[req_id]
                if not task.cancelled() and task.exception() is None and task.result():
                    self._answered.add(req_id)  # a failed upload may be tried again

        return forget

    async def _ship(self, request: LogRequest) -> bool:
        try:
            await self._link.upload(
                request.manager, f"/v1/logs/{request.req_id}", self._lines(request)
            )
        except FerryError as exc:
            log.warning("could not send logs", extra=kv(request=request.req_id[:12], error=exc))
            return False
        return True

    async def _lines(self, request: LogRequest) -> AsyncIterator[bytes]:
        files: list[tuple[str, Path, int]] = []
        for container in self._containers.all():
            if container.config.task_id in request.task_ids:
                path = self._containers.store.log_path(container.config.container_id)
                if path.exists():
                    files.append((container.config.task_id, path, _tail_offset(path, request.tail)))
        positions = {task_id: offset for task_id, _path, offset in files}
        while True:
            for task_id, path, _offset in files:
                with open(path, "rb") as f:
                    f.seek(positions[task_id])
                    data = f.read()
                complete = data[: data.rfind(b"\n") + 1] if request.follow else data
                positions[task_id] += len(complete)
                for line in complete.splitlines():
                    record = logfile.parse_line(line)  # one record of the monitor's log
                    if record is None:
                        continue
                    item = {
                        "task": task_id,
                        "line": record.data.rstrip(b"\n").decode(errors="replace"),
                    }
                    yield json.dumps(item).encode() + b"\n"
            if not request.follow:
                return
            await asyncio.sleep(FOLLOW_POLL_S)
