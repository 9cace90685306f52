from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ferry.api.routes.swarm import SwarmRoutes
from ferry.api.routes.system import SystemRoutes
from ferry.api.server import make_app
from ferry.daemon.config import DaemonConfig
from ferry.daemon.swarm import SwarmController
from ferry.kernel.thread import KernelThread


async def client_for(tmp_path: Path) -> TestClient[object, object]:
    config = DaemonConfig(state_dir=tmp_path / "state", run_dir=tmp_path / "run", hostname="hx")
    swarm = SwarmController(config, KernelThread())
    app = make_app()
    SystemRoutes(config, swarm, dict).register(app)
    SwarmRoutes(swarm).register(app)
    client: TestClient[object, object] = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_ping_answers_with_docker_headers(tmp_path: Path) -> None:
    client = await client_for(tmp_path)
    resp = await client.get("/_ping")
    assert resp.status == 200
    assert await resp.text() == "OK"
    assert resp.headers["Api-Version"] == "1.47"
    assert resp.headers["Swarm"] == "inactive"
    await client.close()


async def test_versioned_paths_reach_the_same_routes(tmp_path: Path) -> None:
    client = await client_for(tmp_path)
    plain = await (await client.get("/version")).json()
    versioned = await (await client.get("/v1.47/version")).json()
    assert plain == versioned
    assert plain["ApiVersion"] == "1.47"
    await client.close()


async def test_errors_leave_in_dockers_shape(tmp_path: Path) -> None:
    client = await client_for(tmp_path)
    resp = await client.get("/v1.47/nodes")
    assert resp.status == 503
    assert resp.headers["Content-Type"] == "application/json"
    assert "not part of a swarm" in (await resp.json())["message"]
    missing = await client.get("/no/such/path")
    assert missing.status == 404
    assert (await missing.json())["message"] == "page not found"
    await client.close()


async def test_info_outside_a_swarm_says_inactive(tmp_path: Path) -> None:
    client = await client_for(tmp_path)
    info = await (await client.get("/info")).json()
    assert info["Name"] == "hx"
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    await client.close()


async def test_info_outside_a_swarm_omits_what_it_does_not_have(tmp_path: Path) -> None:
    # Docker's optional fields are omitempty: absent, not null, when there is nothing to say
    client = await client_for(tmp_path)
    swarm = (await (await client.get("/info")).json())["Swarm"]
    assert "Cluster" not in swarm
    assert "RemoteManagers" not in swarm
    await client.close()
