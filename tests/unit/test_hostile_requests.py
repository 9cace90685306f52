"""The hostile-input corpus (hostile_requests.py) against ferryd's routes, in-process: each
request gets its status and its one-line message, never a 5xx."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.unit.api_rig import api_client
from tests.unit.hostile_requests import CASES, Hostile


@pytest.mark.parametrize("case", CASES, ids=[c.case_id for c in CASES])
async def test_a_hostile_request_gets_its_answer(case: Hostile, tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        if case.raw is not None:
            headers = {"Content-Type": "application/json"}
            body = io.BytesIO(case.raw)  # streamed: a large body must not sit in one write
            resp = await client.request(case.method, case.path, data=body, headers=headers)
        elif case.body is not None:
            resp = await client.request(
                case.method, case.path, json=case.body, headers=case.headers
            )
        else:
            resp = await client.request(case.method, case.path)
        assert resp.headers["Content-Type"] == "application/json"
        message = (await resp.json())["message"]
    assert (resp.status, case.message in message) == (case.status, True), message
    assert "\n" not in message


async def test_the_corpus_covers_both_findings() -> None:
    assert {c.finding for c in CASES} >= {"5", "6"}
    assert len({c.case_id for c in CASES}) == len(CASES)


async def test_a_well_formed_container_passes_the_same_checks(tmp_path: Path) -> None:
    # the rig refuses for the right reasons: a good request goes through, a good signal too
    async with api_client(tmp_path) as client:
        body = {
            "Image": "tools",
            "Cmd": ["sleep", "1"],
            "Hostname": "web-1.example",
            "WorkingDir": "/tmp",
            "Env": ["A=1", "B"],
            "HostConfig": {"NetworkMode": "none"},  # the rig has no default bridge network
        }
        created = await client.post("/v1.47/containers/create?name=/ok1", json=body)
        assert created.status == 201, await created.text()
        listed = await client.get('/v1.47/containers/json?all=1&filters={"name":{"ok1":true}}')
        assert [c["Names"] for c in await listed.json()] == [["/ok1"]]
        unlimited = await client.get("/v1.47/containers/json?all=true&limit=0&size=0")
        assert len(await unlimited.json()) == 1  # limit 0 is no limit, as in Docker
        killed = await client.post("/v1.47/containers/ok1/kill?signal=SIGTERM")
        assert killed.status == 409  # not running: the signal itself was fine
        waited = await client.post("/v1.47/containers/ok1/wait?condition=not-running")
        assert waited.status == 200
        assert (await waited.json())["StatusCode"] == 0


async def test_an_oldest_supported_version_is_served(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        assert (await client.get("/v1.24/version")).status == 200
        assert (await client.get("/v1.47/_ping")).status == 200
