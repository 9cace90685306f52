"""A service's logs and ``doctor --all`` findings come from the nodes asked, each answering for
itself only (``manager/logs.py``, ``manager/doctor.py``): a node cannot forge another's lines
or findings, or end a request for all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ferry.doctor.findings import Finding
from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.manager.doctor import DoctorRelay
from ferry.manager.logs import LogLine, LogRelay
from ferry.manager.store.memory import MemoryStore
from ferry.manager.store.view import ClusterView
from ferry.model.service import Service


class View:
    """Tasks t1 (on n1) and t2 (on n2) of one service, both nodes up."""

    def tasks(self, _svc_id: str) -> list[Any]:
        return [
            SimpleNamespace(task_id="t1", node_id="n1", container_id="c1"),
            SimpleNamespace(task_id="t2", node_id="n2", container_id="c2"),
        ]

    def is_up(self, _node_id: str) -> bool:
        return True


async def _lines(*raw: bytes) -> AsyncIterator[bytes]:
    for line in raw:
        yield line


async def _asked(relay: LogRelay) -> tuple[str, asyncio.Task[list[LogLine]]]:
    service = cast(Service, SimpleNamespace(svc_id="s1"))

    async def read() -> list[LogLine]:
        return [line async for line in relay.collect(service, tail=-1, follow=False)]

    reading = asyncio.ensure_future(read())
    for _ in range(100):
        if relay._asked:
            return next(iter(relay._asked)), reading
        await asyncio.sleep(0.01)
    raise AssertionError("no request was made")


async def test_each_node_answers_for_its_own_tasks_once() -> None:
    relay = LogRelay(MemoryStore(), cast(ClusterView, View()), "10.0.0.1:2377")
    req_id, reading = await _asked(relay)
    # a node claiming another node in its lines is still itself
    await relay.deliver(req_id, "n1", _lines(b'{"task": "t1", "node": "n2", "line": "one"}\n'))
    with pytest.raises(Conflict, match="already answered"):
        await relay.deliver(req_id, "n1", _lines())
    with pytest.raises(NotFound):
        await relay.deliver(req_id, "n3", _lines(b'{"task": "t2", "line": "forged"}\n'))
    with pytest.raises(InvalidArgument, match="t1 is not one this node was asked for"):
        await relay.deliver(req_id, "n2", _lines(b'{"task": "t1", "line": "forged"}\n'))
    lines = await reading
    assert [(line.node_id, line.task_id, line.text) for line in lines] == [("n1", "t1", b"one")]


@pytest.mark.parametrize("raw", [b"not json\n", b"[1]\n", b'{"task": "t1"}\n'])
async def test_a_malformed_line_ends_that_nodes_answer(raw: bytes) -> None:
    relay = LogRelay(MemoryStore(), cast(ClusterView, View()), "10.0.0.1:2377")
    req_id, reading = await _asked(relay)
    with pytest.raises(InvalidArgument):
        await relay.deliver(req_id, "n1", _lines(raw))
    await relay.deliver(req_id, "n2", _lines(b'{"task": "t2", "line": "two"}\n'))
    assert [line.text for line in await reading] == [b"two"]


async def test_an_unknown_request_is_not_found() -> None:
    relay = LogRelay(MemoryStore(), cast(ClusterView, View()), "10.0.0.1:2377")
    with pytest.raises(NotFound):
        await relay.deliver("nope", "n1", _lines())


class Nodes:
    """Nodes n1 (h1) and n2 (h2), both up."""

    def nodes(self) -> list[Any]:
        return [
            SimpleNamespace(node_id="n1", hostname="h1", left=False),
            SimpleNamespace(node_id="n2", hostname="h2", left=False),
        ]

    def is_down(self, _node_id: str) -> bool:
        return False


async def test_doctor_findings_are_the_answering_nodes_own_and_counted_once() -> None:
    relay = DoctorRelay(MemoryStore(), cast(ClusterView, Nodes()), "10.0.0.1:2377")
    examining = asyncio.ensure_future(relay.examine_all())
    for _ in range(100):
        if relay._answers:
            break
        await asyncio.sleep(0.01)
    [req_id] = relay._answers
    forged = Finding("h2", "task", "web.1", "state", "running", "")
    relay.deliver(req_id, "n1", [forged])  # n1 speaks of h2: it is about n1 all the same
    relay.deliver(req_id, "n1", [forged])  # a second answer counts for nothing
    relay.deliver(req_id, "n2", [])
    assert await examining == [Finding("h1", "task", "web.1", "state", "running", "")]
