"""The event bus and ``GET /events`` (docker events): Docker's shape, its filter rules, the
bounded history behind ``since``/``until``, and the stream of what follows."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ferry.events import Event, EventBus, included
from tests.unit.api_rig import Client, api_client


def _event(type_: str, action: str, actor: str, **attrs: str) -> Event:
    return Event(type_, action, actor, attrs, "local", 1_700_000_000_123_456_789)


def test_an_event_has_dockers_shape() -> None:
    doc = _event("container", "die", "c0ffee", name="web", image="nginx", exitCode="3").doc()
    assert doc == {
        "status": "die",
        "id": "c0ffee",
        "from": "nginx",
        "Type": "container",
        "Action": "die",
        "Actor": {"ID": "c0ffee", "Attributes": {"name": "web", "image": "nginx", "exitCode": "3"}},
        "scope": "local",
        "time": 1_700_000_000,
        "timeNano": 1_700_000_000_123_456_789,
    }
    assert "status" not in _event("network", "create", "n1", name="front").doc()


def test_event_filters_follow_dockers_rules() -> None:
    web = _event("container", "start", "c0ffee1234", name="web", image="nginx:1.25", tier="a")
    assert included(web, {"type": ["container"], "event": ["start", "die"]})
    assert not included(web, {"type": ["network"]})
    assert included(web, {"container": ["web"]})
    assert included(web, {"container": ["c0ff"]})  # an id prefix
    assert not included(web, {"container": ["db"]})
    assert included(web, {"image": ["nginx"]})  # the image name without its tag
    assert included(web, {"image": ["nginx:1.25"]})
    assert not included(web, {"image": ["ngin"]})
    assert included(web, {"label": ["tier=a"]})
    assert not included(web, {"label": ["tier=b"]})
    health = _event("container", "health_status: healthy", "c0ffee1234", name="web")
    assert included(health, {"event": ["health_status"]})
    net = _event("network", "connect", "n1", name="front", container="c0ffee1234")
    assert not included(net, {"container": ["web"]})  # Docker: a container key wants its events
    assert included(net, {"network": ["front"]})
    pulled = _event("image", "pull", "busybox:latest", name="busybox:latest")
    assert included(pulled, {"image": ["busybox"]})


def test_the_history_is_bounded_and_ordered() -> None:
    bus = EventBus(history=3)
    sent = [bus.publish("volume", "create", f"v{n}") for n in range(5)]
    assert [e.actor_id for e in bus.history(0)] == ["v2", "v3", "v4"]
    assert [e.actor_id for e in bus.history(sent[3].time_ns)] == ["v3", "v4"]
    assert [e.actor_id for e in bus.history(0, sent[3].time_ns)] == ["v2", "v3"]
    assert all(a.time_ns < b.time_ns for a, b in itertools.pairwise(sent))


async def test_a_slow_subscriber_is_dropped_not_buffered_without_bound() -> None:
    bus = EventBus(queue=3)
    with bus.subscribe() as queue:
        for n in range(5):
            bus.publish("volume", "create", f"v{n}")
        got = [queue.get_nowait() for _ in range(queue.qsize())]
    assert got[-1] is None
    assert [e.actor_id for e in got if e is not None] == ["v0", "v1"]


# through the API -----------------------------------------------------------------------------
async def _create(client: Client, name: str) -> str:
    created = await client.post(
        f"/v1.47/containers/create?name={name}",
        json={"Image": "tools", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}},
    )
    assert created.status == 201, await created.text()
    return str((await created.json())["Id"])


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


async def test_events_since_until_replay_the_history_and_end(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        start = time.time() - 1
        cid = await _create(client, "web")
        made = await client.post("/v1.47/volumes/create", json={"Name": "data"})
        assert made.status == 201
        removed = await client.delete(f"/v1.47/containers/{cid}")
        assert removed.status == 204, await removed.text()
        until = time.time() + 0.001
        answer = await client.get(f"/v1.47/events?since={start:.3f}&until={until:.9f}")
        assert answer.status == 200
        events = _lines(await answer.text())
        assert [(e["Type"], e["Action"]) for e in events] == [
            ("container", "create"),
            ("volume", "create"),
            ("container", "destroy"),
        ]
        assert events[0]["Actor"] == {
            "ID": cid,
            "Attributes": {"image": "tools:latest", "name": "web"},
        }
        only = quote(json.dumps({"type": ["volume"]}))
        answer = await client.get(f"/v1.47/events?since={start}&until={until}&filters={only}")
        assert [e["Actor"]["ID"] for e in _lines(await answer.text())] == ["data"]


async def test_an_until_before_since_is_refused_in_dockers_words(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        answer = await client.get("/v1.47/events?since=200&until=100")
        assert answer.status == 400
        assert "`since` time (200) cannot be after `until` time (100)" in await answer.text()


async def test_events_stream_what_follows_until_the_client_goes_away(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        kind = quote(json.dumps({"event": ["create"]}))
        answer = await client.get(f"/v1.47/events?filters={kind}")
        assert answer.status == 200
        await _create(client, "late")
        line = await asyncio.wait_for(answer.content.readline(), 10)
        event = json.loads(line)
        assert (event["Type"], event["Action"], event["Actor"]["Attributes"]["name"]) == (
            "container",
            "create",
            "late",
        )
        answer.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("filters=" + quote(json.dumps({"colour": ["red"]})), "invalid filter 'colour'"),
        ("filters=" + quote(json.dumps({"type": ["planet"]})), "invalid filter 'type=planet'"),
        ("since=yesterday", "invalid value for since 'yesterday'"),
    ],
)
async def test_events_refuse_what_they_cannot_honour(
    tmp_path: Path, query: str, message: str
) -> None:
    async with api_client(tmp_path) as client:
        answer = await client.get(f"/v1.47/events?{query}")
        assert answer.status == 400
        assert (await answer.json())["message"].startswith(message)
