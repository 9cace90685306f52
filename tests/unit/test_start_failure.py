"""A container whose start fails, as Docker leaves it: created, with Docker's exit code and
error, every waiter ended (the attach that ``docker run`` opened, a ``wait`` on its removal
when it was run with ``--rm``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ferry.agent.container_requests import start_failure_exit_code
from ferry.agent.containers import ContainerService
from ferry.errors import InvalidArgument, NotFound
from ferry.model.container import Container, Status
from ferry.runtime.images import Image
from tests.unit.api_rig import CONTAINERS, Client, api_client

NO_NET = {"NetworkMode": "none"}  # the rig has no default bridge network
NOT_FOUND = (
    "failed to create task for container: failed to create shim task: OCI runtime create "
    'failed: runc create failed: unable to start container process: exec: "/nonexistent": '
    "stat /nonexistent: no such file or directory: unknown"
)
NOT_EXECUTABLE = (
    "failed to create task for container: failed to create shim task: OCI runtime create "
    'failed: runc create failed: unable to start container process: exec: "/etc": '
    "permission denied: unknown"
)


def _fail_starts(containers: ContainerService, message: str) -> None:
    """Every start fails as runc's create does for a command that cannot run."""

    async def failing(_c: Container, _i: Image, _undo: list[Any]) -> None:
        raise InvalidArgument(message)

    containers._start = failing  # type: ignore[method-assign]


async def _create(client: Client, rm: bool = False) -> str:
    created = await client.post(
        "/v1.47/containers/create",
        json={
            "Image": "tools",
            "Cmd": ["/nonexistent"],
            "HostConfig": {**NO_NET, "AutoRemove": rm},
        },
    )
    assert created.status == 201, await created.text()
    return str((await created.json())["Id"])


async def _wait(client: Client, cid: str, condition: str) -> dict[str, Any]:
    answer = await client.post(f"/v1.47/containers/{cid}/wait?condition={condition}")
    assert answer.status == 200
    return dict(json.loads(await answer.read()))


def test_the_exit_code_of_a_failed_start_is_dockers() -> None:
    assert start_failure_exit_code(NOT_FOUND, 0) == 127
    assert start_failure_exit_code('exec: "x": executable file not found in $PATH', 0) == 127
    assert start_failure_exit_code(NOT_EXECUTABLE, 0) == 126
    assert start_failure_exit_code("exec: is a directory", 3) == 126
    assert start_failure_exit_code("Bind for 0.0.0.0:80 failed", 0) == 128  # exitUnknown
    assert start_failure_exit_code("Bind for 0.0.0.0:80 failed", 3) == 3  # the last run's


async def test_run_rm_whose_start_fails_is_removed_and_every_waiter_ends(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        containers = client.server.app[CONTAINERS]
        _fail_starts(containers, NOT_FOUND)
        cid = await _create(client, rm=True)
        # what the docker CLI has open when it starts: the attach and the wait on removal
        attach = asyncio.ensure_future(containers.attach_socket(cid))
        removed = asyncio.ensure_future(_wait(client, cid, "removed"))
        next_exit = asyncio.ensure_future(_wait(client, cid, "next-exit"))
        await asyncio.sleep(0.05)  # let both requests register their waits
        started = await client.post(f"/v1.47/containers/{cid}/start")
        assert started.status == 400
        assert (await started.json())["message"] == NOT_FOUND
        async with asyncio.timeout(5):
            assert await attach is None
            assert await removed == {"StatusCode": 127, "Error": None}
            assert await next_exit == {"StatusCode": 127, "Error": None}
        with pytest.raises(NotFound):
            containers.find(cid)


async def test_a_failed_start_without_rm_leaves_the_container_created(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        containers = client.server.app[CONTAINERS]
        _fail_starts(containers, NOT_EXECUTABLE)
        cid = await _create(client)
        attach = asyncio.ensure_future(containers.attach_socket(cid))
        next_exit = asyncio.ensure_future(_wait(client, cid, "next-exit"))
        await asyncio.sleep(0.05)
        started = await client.post(f"/v1.47/containers/{cid}/start")
        assert started.status == 400
        async with asyncio.timeout(5):
            assert await attach is None
        state = (await (await client.get(f"/v1.47/containers/{cid}/json")).json())["State"]
        assert (state["Status"], state["ExitCode"], state["Error"]) == (
            "created",
            126,
            NOT_EXECUTABLE,
        )
        async with asyncio.timeout(5):
            assert await _wait(client, cid, "not-running") == {"StatusCode": 126, "Error": None}
        # Docker's next-exit waits for a run that ends, or for the removal
        assert not next_exit.done()
        assert (await client.delete(f"/v1.47/containers/{cid}")).status == 204
        async with asyncio.timeout(5):
            assert await next_exit == {"StatusCode": 126, "Error": None}


async def test_a_start_refused_before_the_runtime_also_ends_the_attach(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        containers = client.server.app[CONTAINERS]
        cid = await _create(client)

        def gone(_config: Any) -> Image:
            raise NotFound("No such image: tools")

        containers.image_of = gone  # type: ignore[method-assign]
        attach = asyncio.ensure_future(containers.attach_socket(cid))
        await asyncio.sleep(0.05)
        assert (await client.post(f"/v1.47/containers/{cid}/start")).status == 404
        async with asyncio.timeout(5):
            assert await attach is None
        assert containers.find(cid).state.status == Status.CREATED
