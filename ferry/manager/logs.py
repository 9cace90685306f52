"""Collecting a service's logs from the nodes that ran its tasks.

Design notes. Logs stay where they are written (each node's container directories). To show
them, the manager serving the request writes one ``logreqs/<node>/<id>`` key per node, on a
short lease it keeps alive while its client listens. Each node's agent sees its key in its
mirror and streams the lines of the tasks it holds back to that manager (``POST
/v1/logs/<id>``), one JSON line per log line; following ends when the key goes. The manager's
own node answers the same way, so there is one path for all. Nodes that are down cannot
answer: the request then ends after a short wait instead of hanging.

A node answers for itself only: the manager takes the node from the caller's certificate, not
from the lines, accepts only the tasks it asked that node for, and one answer per node (a node
that could speak for others could forge their logs, or end the request for all).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from ferry.errors import Conflict, FerryError, InvalidArgument, NotFound
from ferry.manager.store import Delete, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode
from ferry.model.ids import new_hex_id
from ferry.model.logs import LogRequest
from ferry.model.service import Service

LEASE_TTL_S = 10
ANSWER_WAIT_S = 3.0  # how long a node that sent nothing may keep a non-follow request open


@dataclass(frozen=True)
class LogLine:
    task_id: str
    node_id: str
    text: bytes


@dataclass
class _Asked:
    """A request in flight: where its lines go, which tasks each node was asked for, and the
    nodes that answered already."""

    inbox: asyncio.Queue[LogLine | None]
    tasks: dict[str, frozenset[str]]
    answered: set[str]


def _parse(raw: bytes, node_id: str, tasks: frozenset[str]) -> LogLine:
    """One uploaded line, {"task": id, "line": text}; the node is the caller's. Raises
    InvalidArgument for anything else, or a task this node was not asked for."""
    try:
        item = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"a log line is not JSON: {exc}") from exc
    if not isinstance(item, dict):
        raise InvalidArgument("a log line must be an object")
    task, text = item.get("task"), item.get("line")
    if not isinstance(task, str) or not isinstance(text, str):
        raise InvalidArgument('a log line needs "task" and "line" strings')
    if task not in tasks:
        raise InvalidArgument(f"task {task} is not one this node was asked for")
    return LogLine(task, node_id, text.encode())


class LogRelay:
    """The manager side: requests out, lines in."""

    def __init__(self, store: Store, view: ClusterView, manager_addr: str) -> None:
        self._store = store
        self._view = view
        self._addr = manager_addr
        self._asked: dict[str, _Asked] = {}

    async def deliver(self, req_id: str, node_id: str, lines: AsyncIterator[bytes]) -> None:
        """Node ``node_id``'s answer (the caller's, as its certificate says): each line is
        {"task": id, "line": text}. Raises NotFound when no request in flight asked that node,
        Conflict when it answered already, InvalidArgument for a malformed line or a task it
        was not asked for (its answer ends there)."""
        asked = self._asked.get(req_id)
        if asked is None or node_id not in asked.tasks:
            raise NotFound(f"no log request {req_id} for this node")
        if node_id in asked.answered:
            raise Conflict(f"this node already answered log request {req_id}")
        asked.answered.add(node_id)
        try:
            async for raw in lines:
                if raw.strip():
                    await asked.inbox.put(_parse(raw, node_id, asked.tasks[node_id]))
        finally:
            asked.inbox.put_nowait(None)

    async def collect(self, svc: Service, tail: int, follow: bool) -> AsyncGenerator[LogLine, None]:
        tasks = [t for t in self._view.tasks(svc.svc_id) if t.node_id and t.container_id]
        by_node: dict[str, list[str]] = {}
        for task in tasks:
            by_node.setdefault(task.node_id, []).append(task.task_id)
        up_nodes = [n for n in by_node if self._view.is_up(n)]
        if not up_nodes:
            return
        req_id = new_hex_id()
        inbox: asyncio.Queue[LogLine | None] = asyncio.Queue()
        asked = {node: frozenset(by_node[node]) for node in up_nodes}
        self._asked[req_id] = _Asked(inbox, asked, set())
        lease = await self._store.grant_lease(LEASE_TTL_S)
        puts: list[Put | Delete] = [
            Put(
                keys.log_request(node, req_id),
                encode(LogRequest(req_id, node, tuple(by_node[node]), tail, follow, self._addr)),
                lease,
            )
            for node in up_nodes
        ]
        keeper = asyncio.ensure_future(self._keep(lease))
        try:
            await self._store.commit(puts)
            open_nodes = len(up_nodes)
            while open_nodes:
                timeout = None if follow else ANSWER_WAIT_S
                try:
                    line = await asyncio.wait_for(inbox.get(), timeout)
                except TimeoutError:
                    return  # a node that never answered: what arrived is what there is
                if line is None:
                    open_nodes -= 1
                    continue
                yield line
        finally:
            keeper.cancel()
            self._asked.pop(req_id, None)
            with contextlib.suppress(FerryError):
                await self._store.revoke_lease(lease)  # ends every node's following

    async def _keep(self, lease: int) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL_S / 3)
            with contextlib.suppress(FerryError):
                await self._store.refresh_lease(lease)
