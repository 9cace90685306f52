from pathlib import Path
from types import SimpleNamespace

from aiohttp.test_utils import TestClient, TestServer

from ferry.api.routes.swarm import SwarmRoutes
from ferry.api.routes.system import SystemRoutes
from ferry.api.server import make_app
from ferry.daemon.config import DaemonConfig
from ferry.daemon.membership import Membership
from ferry.daemon.swarm import SwarmController
from ferry.kernel.thread import KernelThread
from ferry.manager import ca, sealing
from ferry.manager.vault import Vault, sealed_secrets
from ferry.model.cluster import ClusterSecrets
from ferry.model.node import Role


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
    assert 'Use "docker swarm init"' in (await resp.json())["message"]
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


class StubManager:
    """What the local API reads of a manager whose swarm is sealed (Manager.locked)."""

    def __init__(self, vault: Vault, read_secrets: object) -> None:
        self.vault = vault
        self.node_id = "n1"
        self.keys = SimpleNamespace(secrets=read_secrets)
        self.upgrade = SimpleNamespace(mark=lambda: None)

    @property
    def locked(self) -> bool:
        return self.vault.locked


async def locked_client(tmp_path: Path) -> tuple[TestClient[object, object], Vault, bytes]:
    """ferryd as a restarted manager of an autolocked swarm: member, agent running, no key."""
    config = DaemonConfig(state_dir=tmp_path / "state", run_dir=tmp_path / "run", hostname="hx")
    swarm = SwarmController(config, KernelThread())
    kek = sealing.new_kek()
    store_ca = ca.create_ca("c1", ca.STORE_CA_NAME)
    secrets = sealed_secrets(
        ClusterSecrets("w" * 25, "m" * 25), kek, ca_key_pem=ca.new_key_pem(), store_ca=store_ca,
        autolock=True,
    )  # fmt: skip
    vault = Vault(tmp_path / "kek")

    async def read_secrets() -> tuple[ClusterSecrets, int]:
        return secrets, 7

    swarm.membership = Membership("n1", "c1", Role.MANAGER, "10.0.0.1", "0.0.0.0:2377")
    swarm.agent = SimpleNamespace(session=SimpleNamespace(last_error=""))  # type: ignore[assignment]
    swarm.manager = StubManager(vault, read_secrets)  # type: ignore[assignment]
    app = make_app()
    SystemRoutes(config, swarm, dict).register(app)
    SwarmRoutes(swarm).register(app)
    client: TestClient[object, object] = TestClient(TestServer(app))
    await client.start_server()
    return client, vault, kek


async def test_a_locked_manager_says_so_and_refuses_management_as_docker_does(
    tmp_path: Path,
) -> None:
    client, vault, kek = await locked_client(tmp_path)
    info = (await (await client.get("/info")).json())["Swarm"]
    assert (info["LocalNodeState"], info["ControlAvailable"]) == ("locked", False)
    assert (await client.get("/_ping")).headers["Swarm"] == "locked"
    for method, path in (("GET", "/nodes"), ("GET", "/swarm"), ("GET", "/swarm/unlockkey")):
        resp = await client.request(method, path)
        assert resp.status == 503
        assert "needs to be unlocked" in (await resp.json())["message"]
    leave = await client.post("/swarm/leave")
    assert leave.status == 409
    assert "Please unlock it first" in (await leave.json())["message"]
    bad = await client.post("/swarm/unlock", json={"UnlockKey": "SWMKEY-1-short"})
    assert bad.status == 400
    wrong = sealing.format_key(sealing.new_kek())
    refused = await client.post("/swarm/unlock", json={"UnlockKey": wrong})
    assert (await refused.json())["message"] == "swarm could not be unlocked: invalid key provided"
    assert vault.locked
    ok = await client.post("/swarm/unlock", json={"UnlockKey": sealing.format_key(kek)})
    assert ok.status == 200
    assert not vault.locked
    again = await client.post("/swarm/unlock", json={"UnlockKey": sealing.format_key(kek)})
    assert (again.status, (await again.json())["message"]) == (409, "swarm is not locked")
    await client.close()
