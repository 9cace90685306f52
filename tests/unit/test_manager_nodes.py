import json

import pytest

from ferry.errors import Conflict, Forbidden, InvalidArgument, NotFound, SwarmLocked, Unavailable
from ferry.manager import ca, sealing
from ferry.manager.admission import Ask
from ferry.manager.etcd_member import FINAL_TLS_PHASE
from ferry.manager.join import JoinService, store_tls_phase
from ferry.manager.networks import AttachRequest, NetworkOps
from ferry.manager.store import Delete, keys
from ferry.manager.tokens import make_token
from ferry.manager.wire import JoinRequest
from ferry.model.network import EndpointKind, NetworkRequest
from ferry.model.node import SESSION_TTL_S, Availability, Role
from tests.unit.conftest import ManagerRig


def join_request(rig: ManagerRig, secret: str, hostname: str = "h2", addr: str = "") -> JoinRequest:
    token = make_token(ca.ca_der(rig.ca.cert_pem), secret)
    return JoinRequest(
        token=str(token),
        csr_pem=ca.make_csr(ca.new_key_pem()).decode(),
        hostname=hostname,
        advertise_addr=addr,
    )


async def test_a_heartbeat_makes_a_node_ready_and_silence_makes_it_down(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    assert not rig.view.is_up("n1")
    await rig.hub.heartbeat("n1")
    await rig.feed.wait_for(rig.store.revision)
    assert rig.view.is_up("n1")
    rig.clock.now += SESSION_TTL_S - 1
    await rig.hub.heartbeat("n1")  # refreshes the same lease
    rig.clock.now += SESSION_TTL_S - 1
    rig.store.expire_leases()
    await rig.feed.wait_for(rig.store.revision)
    assert rig.view.is_up("n1")
    rig.clock.now += 2
    rig.store.expire_leases()
    await rig.feed.wait_for(rig.store.revision)
    assert not rig.view.is_up("n1")
    await rig.hub.heartbeat("n1")  # back: a fresh lease
    await rig.feed.wait_for(rig.store.revision)
    assert rig.view.is_up("n1")


async def test_a_node_silent_as_long_as_swarm_allows_stays_ready(rig: ManagerRig) -> None:
    """Swarm marks a node down after 15 s without a heartbeat (5 s period, grace multiplier 3):
    a restart of ferryd on a loaded host (7 s measured) must not make its node Down and have
    its running tasks replaced."""
    await rig.add_node("n1", "h1")
    await rig.hub.heartbeat("n1")
    rig.clock.now += 14.5
    rig.store.expire_leases()
    await rig.feed.wait_for(rig.store.revision)
    assert rig.view.is_up("n1")


async def test_a_removed_node_cannot_keep_a_session(rig: ManagerRig) -> None:
    with pytest.raises(Forbidden, match="removed"):
        await rig.hub.heartbeat("ghost")


async def test_the_session_stream_opens_with_a_snapshot_without_secrets(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    stream = rig.hub.stream("n1", "worker")
    first = json.loads(await anext(stream))
    assert first["t"] == "snapshot"
    streamed = {item["k"] for item in first["items"]}
    assert "/ferry/v1/nodes/n1" in streamed
    assert "/ferry/v1/cluster" in streamed
    assert "/ferry/v1/secrets" not in streamed
    await rig.add_node("n2", "h2")
    event = json.loads(await anext(stream))
    assert event["t"] == "event"
    assert [i["k"] for i in event["items"]] == ["/ferry/v1/nodes/n2"]
    assert event["items"][0]["v"]["hostname"] == "h2"
    await stream.aclose()


async def test_updating_a_node_with_a_stale_version_is_refused(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    version = rig.view.entity_version(keys.node("n1"))
    await rig.nodes.update("h1", version, availability="drain")
    node = rig.view.node("n1")
    assert node is not None
    assert node.availability == Availability.DRAIN
    with pytest.raises(Conflict, match="out of sequence"):
        await rig.nodes.update("h1", version, availability="active")


async def test_bad_availability_and_role_changes_are_refused(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    with pytest.raises(InvalidArgument):
        await rig.nodes.update("h1", None, availability="sleepy")
    with pytest.raises(InvalidArgument, match='invalid Role: "boss"'):
        await rig.nodes.update("h1", None, role="boss")


async def test_a_ready_node_is_removed_only_with_force(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    await rig.hub.heartbeat("n1")
    await rig.feed.wait_for(rig.store.revision)
    with pytest.raises(Conflict, match="not down"):
        await rig.nodes.remove("h1", force=False)
    await rig.nodes.remove("h1", force=True)
    assert rig.view.node("n1") is None
    with pytest.raises(NotFound):
        rig.nodes.find("h1")


async def test_a_removed_node_frees_its_containers_addresses_but_not_its_tasks(
    rig: ManagerRig,
) -> None:
    networks = NetworkOps(rig.store, rig.view, rig.feed)
    await networks.create(NetworkRequest("net", attachable=True))
    await rig.add_node("n1", "h1")
    await rig.add_node("n2", "h2")
    gone = await networks.attach("net", Ask("n1", "c1", "app1"))
    # a task's endpoint is the leader's to write (as the reconciler does), never a node's
    network = networks.find("net")
    req = AttachRequest(network.net_id, "n1", "t1", "web.1", EndpointKind.TASK, service="web")
    task, ops, expect = networks.plan_endpoint(network, req, networks.taken_ips(network.net_id))
    revision = await rig.store.commit(ops, expect)
    assert revision is not None
    await rig.feed.wait_for(revision)
    kept = await networks.attach("net", Ask("n2", "c2", "app2"))
    await rig.nodes.remove("h1", force=True)
    left = {ep.ep_id for ep in rig.view.endpoints(gone.net_id)}
    assert left == {task.ep_id, kept.ep_id}
    assert gone.ip not in networks.taken_ips(gone.net_id)


async def test_a_manager_cannot_be_removed_with_node_rm(rig: ManagerRig) -> None:
    await rig.add_node("m1", "h1", Role.MANAGER)
    with pytest.raises(InvalidArgument, match="must be demoted to worker before removal"):
        await rig.nodes.remove("h1", force=True)


async def test_a_node_that_left_stays_listed_as_down(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    await rig.hub.heartbeat("n1")
    await rig.nodes.mark_left("n1")
    node = rig.view.node("n1")
    assert node is not None
    assert node.left
    assert not rig.view.is_up("n1")
    with pytest.raises(Forbidden, match="left"):
        await rig.hub.heartbeat("n1")


async def test_a_worker_token_admits_a_worker_with_a_certificate(rig: ManagerRig) -> None:
    response = await rig.joins.join(join_request(rig, rig.secrets.worker_secret), "10.99.0.12")
    assert response.role == "worker"
    assert response.addr == "10.99.0.12"
    ca.verify_signed_by(response.cert_pem.encode(), rig.ca.cert_pem)
    await rig.feed.wait_for(rig.store.revision)
    joined = rig.view.node(response.node_id)
    assert joined is not None
    assert joined.hostname == "h2"
    assert joined.role == Role.WORKER


async def test_a_rotated_or_foreign_token_admits_nobody(rig: ManagerRig) -> None:
    before = len(rig.view.nodes())
    with pytest.raises(Forbidden, match="rotated"):
        await rig.joins.join(join_request(rig, "x" * 25), "10.99.0.12")
    foreign = make_token(ca.ca_der(ca.create_ca("other").cert_pem), rig.secrets.worker_secret)
    request = join_request(rig, rig.secrets.worker_secret).model_copy(
        update={"token": str(foreign)}
    )
    with pytest.raises(Forbidden, match="another swarm"):
        await rig.joins.join(request, "10.99.0.12")
    assert len(rig.view.nodes()) == before


async def test_a_second_live_node_at_the_same_address_is_refused(rig: ManagerRig) -> None:
    first = await rig.joins.join(join_request(rig, rig.secrets.worker_secret), "10.99.0.12")
    await rig.hub.heartbeat(first.node_id)
    await rig.feed.wait_for(rig.store.revision)
    with pytest.raises(Conflict, match="already part"):
        await rig.joins.join(join_request(rig, rig.secrets.worker_secret, "h2b"), "10.99.0.12")


async def test_rotating_a_token_changes_only_that_role(rig: ManagerRig) -> None:
    before = await rig.nodes.tokens()
    await rig.nodes.rotate("worker")
    after = await rig.nodes.tokens()
    assert before["worker"] != after["worker"]
    assert before["manager"] == after["manager"]
    with pytest.raises(InvalidArgument):
        await rig.nodes.rotate("admin")


async def test_a_heartbeat_racing_node_rm_does_not_bring_the_node_back(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    # the removal lands in the store; this manager's view has not seen it yet
    await rig.store.commit([Delete(keys.node("n1"))])
    assert rig.view.node("n1") is not None
    await rig.hub.heartbeat("n1", images=("alpine:latest",))
    assert await rig.store.get(keys.node("n1")) is None


async def test_a_heartbeat_records_the_node_s_wireguard_key(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1")
    await rig.hub.heartbeat("n1", wg_key="pub-key-1")
    await rig.feed.wait_for(rig.store.revision)
    node = rig.view.node("n1")
    assert node is not None and node.wg_key == "pub-key-1"


class FakeMembers:
    """etcd's member list, as far as a manager join uses it."""

    def __init__(self) -> None:
        self.added: list[str] = []

    async def add(self, peer_url: str, *, learner: bool = True) -> int:
        self.added.append(peer_url)
        return 1

    async def all(self) -> list[tuple[int, str, list[str]]]:
        return [(1, "", self.added)]


def manager_join(rig: ManagerRig, addr: str = "10.99.0.13") -> JoinRequest:
    return join_request(rig, rig.secrets.manager_secret, "h3", addr).model_copy(
        update={"store_csr_pem": ca.make_csr(ca.new_key_pem()).decode()}
    )


async def test_a_worker_gets_no_store_certificate_and_no_unlock_key(rig: ManagerRig) -> None:
    request = join_request(rig, rig.secrets.worker_secret).model_copy(
        update={"store_csr_pem": ca.make_csr(ca.new_key_pem()).decode()}
    )
    response = await rig.joins.join(request, "10.99.0.12")
    assert response.role == "worker"
    assert (response.store_cert_pem, response.store_ca_pem, response.unlock_key) == ("", "", "")


async def test_a_manager_gets_a_store_certificate_and_the_unlock_key(rig: ManagerRig) -> None:
    joins = JoinService(rig.store, FakeMembers(), rig.view, rig.nodes, rig.vault)  # type: ignore[arg-type]
    response = await joins.join(manager_join(rig), "10.99.0.13")
    assert response.role == "manager"
    ca.verify_signed_by(response.store_cert_pem.encode(), rig.store_ca.cert_pem)
    with pytest.raises(Forbidden):
        ca.verify_signed_by(response.store_cert_pem.encode(), rig.ca.cert_pem)
    assert response.store_ca_pem == rig.store_ca.cert_pem.decode()
    assert sealing.parse_key(response.unlock_key) == rig.kek
    assert not response.autolock
    await rig.feed.wait_for(rig.store.revision)
    assert store_tls_phase(rig.view, response.node_id) == FINAL_TLS_PHASE


async def test_a_manager_join_needs_a_store_csr_and_a_store_on_its_own_ca(
    rig: ManagerRig,
) -> None:
    joins = JoinService(rig.store, FakeMembers(), rig.view, rig.nodes, rig.vault)  # type: ignore[arg-type]
    bare = join_request(rig, rig.secrets.manager_secret, "h3", "10.99.0.13")
    with pytest.raises(InvalidArgument, match="store certificate"):
        await joins.join(bare, "10.99.0.13")
    await rig.add_node("m0", "h1", Role.MANAGER)  # a manager of an older ferryd: phase 0
    with pytest.raises(Unavailable, match="managers h1 are not"):
        await joins.join(manager_join(rig), "10.99.0.13")


async def test_a_locked_manager_admits_nobody(rig: ManagerRig) -> None:
    rig.vault.forget()
    with pytest.raises(SwarmLocked, match="needs to be unlocked"):
        await rig.joins.join(join_request(rig, rig.secrets.worker_secret), "10.99.0.12")
    assert [n for n in rig.view.nodes() if n.hostname == "h2"] == []


async def test_a_manager_join_that_cannot_grow_the_store_leaves_no_record(
    rig: ManagerRig,
) -> None:
    class Refusing(FakeMembers):
        async def add(self, peer_url: str, *, learner: bool = True) -> int:
            raise Forbidden(f"store refused {peer_url}")

    joins = JoinService(rig.store, Refusing(), rig.view, rig.nodes, rig.vault)  # type: ignore[arg-type]
    with pytest.raises(Forbidden, match="store refused"):
        await joins.join(manager_join(rig), "10.99.0.13")
    await rig.feed.wait_for(rig.store.revision)
    assert [n for n in rig.view.nodes() if n.hostname == "h3"] == []
    assert list(rig.view.mirror.entries(keys.STORE_TLS)) == []
