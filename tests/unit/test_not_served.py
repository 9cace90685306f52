"""Every path of Docker's Engine API (v1.47) reaches a handler of ferryd: one that serves it, or
one that refuses it with Docker's "not implemented" (501) naming the feature; never aiohttp's
"page not found" or "method not allowed" (issue 12)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ferry.api.routes.not_served import NOT_SERVED
from tests.unit.api_rig import api_client

API = Path("/work/shared/docker-api/engine-api-v1.47.yaml")
METHODS = ("get", "post", "put", "delete", "head")


@cache
def _docker_paths() -> list[tuple[str, str]]:
    paths = yaml.safe_load(API.read_text())["paths"]
    return [(m.upper(), p) for p, ops in paths.items() for m in ops if m in METHODS]


def _concrete(path: str) -> str:
    # a plugin's or image's name may hold "/" (vieux/sshfs:latest)
    return re.sub(r"\{[^}]+\}", "some/name" if path.startswith("/plugins/") else "x1", path)


async def _handlers(app: web.Application, method: str, path: str) -> list[object]:
    """Every handler registered for ``method`` that matches ``path`` (the first one answers)."""
    found = []
    request = make_mocked_request(method, path, app=app)
    for resource in app.router.resources():
        match, _allowed = await resource.resolve(request)
        if match is not None:
            found.append(match.handler)
    return found


def test_docker_api_description_is_at_hand() -> None:
    assert API.exists(), f"{API} is missing"
    assert ("POST", "/build") in _docker_paths()


@pytest.mark.parametrize("version", ["", "/v1.47"])
async def test_every_docker_path_reaches_exactly_one_handler(tmp_path: Path, version: str) -> None:
    async with api_client(tmp_path) as client:
        app = client.server.app
        for method, path in _docker_paths():
            handlers = await _handlers(app, method, version + _concrete(path))
            assert handlers, f"{method} {path} answers 'page not found'"
            # a row of NOT_SERVED shadowing a real handler (registered later) would hide it
            assert len(handlers) == 1, f"{method} {path}: {len(handlers)} handlers"


async def test_what_ferry_does_not_serve_is_refused_with_501_naming_the_feature(
    tmp_path: Path,
) -> None:
    docker_paths = set(_docker_paths())
    async with api_client(tmp_path) as client:
        for (method, path), refusal in NOT_SERVED.items():
            assert (method, path) in docker_paths or path in ("/build/cancel", "/grpc"), path
            answer = await client.request(method, "/v1.47" + _concrete(path))
            assert answer.status == 501, (method, path, answer.status)
            message = (await answer.json())["message"]
            assert message.startswith(f"Ferry does not implement {refusal.feature} "), message
            assert f"({method} {path})" in message


async def test_a_path_outside_dockers_api_is_still_page_not_found(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        answer = await client.get("/v1.47/no/such/thing")
        assert (answer.status, await answer.json()) == (404, {"message": "page not found"})
        plugin = await client.get("/v1.47/plugins/vieux/sshfs:latest/json")
        assert plugin.status == 501
