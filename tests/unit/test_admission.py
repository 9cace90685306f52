"""What a node may create through the cluster API: every admission rule, over the in-memory
store (manager/admission.py). The caller is the node its certificate names; nothing it says
about itself widens what it gets."""

from __future__ import annotations

import pytest

from ferry.errors import Conflict, Forbidden, InvalidArgument
from ferry.manager.admission import Ask
from ferry.manager.networks import AttachRequest, NetworkOps
from ferry.manager.store import Put, keys
from ferry.model.codec import encode
from ferry.model.network import Endpoint, EndpointKind, Network, NetworkRequest
from ferry.model.node import Role
from ferry.model.service import ContainerTemplate, Service, ServiceSpec
from tests.unit.conftest import ManagerRig

WORKER, OTHER, MANAGER = "w1", "w2", "m1"


@pytest.fixture
async def net(rig: ManagerRig) -> NetworkOps:
    """A swarm with two workers and a manager, an attachable overlay ``front``, a plain one
    ``back``, the ingress network, and a service ``web`` on ``front`` with one task on w2."""
    await rig.add_node(WORKER, "h2")
    await rig.add_node(OTHER, "h3")
    await rig.add_node(MANAGER, "h1", Role.MANAGER)
    ops = NetworkOps(rig.store, rig.view, rig.feed)
    front = await ops.create(NetworkRequest("front", attachable=True))
    await ops.create(NetworkRequest("back", attachable=True))
    await ops.create(NetworkRequest("private"))
    await ops.create(NetworkRequest("ingress", ingress=True))
    spec = ServiceSpec("web", ContainerTemplate("nginx", ()), networks=(front.net_id,))
    revision = await rig.store.commit([Put(keys.service("s1"), encode(Service("s1", spec)))])
    assert revision is not None
    task = AttachRequest(front.net_id, OTHER, "t1", "web.1.t1", EndpointKind.TASK, service="web")
    await commit_endpoint(rig, ops, front, task)
    return ops


async def commit_endpoint(
    rig: ManagerRig, ops: NetworkOps, network: Network, req: AttachRequest
) -> Endpoint:
    """Write an endpoint as the managers do for tasks and VIPs (not through a node's ask)."""
    endpoint, writes, expect = ops.plan_endpoint(network, req, ops.taken_ips(network.net_id))
    revision = await rig.store.commit(writes, expect)
    assert revision is not None
    await rig.feed.wait_for(revision)
    return endpoint


def container(node: str, owner: str, name: str, **more: object) -> Ask:
    return Ask(node, owner, name, **more)  # type: ignore[arg-type]


# kinds -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["task", "vip"])
@pytest.mark.parametrize("node", [WORKER, MANAGER])
async def test_no_node_can_create_task_or_vip_endpoints(
    net: NetworkOps, node: str, kind: str
) -> None:
    with pytest.raises(Forbidden, match=f"cannot create {kind} endpoints"):
        await net.attach("front", Ask(node, "x1", "web", kind=kind))
    assert all(e.owner_id != "x1" for e in net.endpoints(net.find("front").net_id))


async def test_an_unknown_kind_is_refused_by_name(net: NetworkOps) -> None:
    with pytest.raises(InvalidArgument, match="'router'"):
        await net.attach("front", Ask(WORKER, "c1", "app", kind="router"))


async def test_only_members_of_the_swarm_get_endpoints(rig: ManagerRig, net: NetworkOps) -> None:
    with pytest.raises(Forbidden, match="not a member"):
        await net.attach("front", container("gone", "c1", "app"))
    await rig.nodes.mark_left(OTHER)
    with pytest.raises(Forbidden, match="not a member"):
        await net.attach("front", container(OTHER, "c2", "app2"))


# containers ------------------------------------------------------------------------------------
async def test_a_worker_gets_a_container_endpoint_of_its_own_on_an_attachable_network(
    net: NetworkOps,
) -> None:
    endpoint = await net.attach("front", container(WORKER, "c1", "app", aliases=("db",)))
    assert (endpoint.kind, endpoint.node_id) == (EndpointKind.CONTAINER, WORKER)
    assert endpoint.name == "app"
    assert endpoint.aliases == ("db",)


async def test_containers_stay_off_networks_that_are_not_attachable_or_ingress(
    net: NetworkOps,
) -> None:
    with pytest.raises(Forbidden, match="not manually attachable"):
        await net.attach("private", container(WORKER, "c1", "app"))
    with pytest.raises(Forbidden, match="routing mesh only"):
        await net.attach("ingress", container(WORKER, "c1", "app"))


@pytest.mark.parametrize(
    ("name", "more"),
    [
        ("web", {}),
        ("WEB", {}),
        ("app", {"aliases": ("web",)}),
        ("app", {"aliases": ("tasks.web",)}),
        ("app", {"aliases": ("web.front",)}),
        ("app", {"hostname": "web"}),
    ],
)
async def test_no_container_holds_a_service_s_name(
    net: NetworkOps, name: str, more: dict[str, object]
) -> None:
    with pytest.raises(Forbidden, match="belongs to service web"):
        await net.attach("front", container(WORKER, "c1", name, **more))


async def test_a_service_s_name_is_refused_on_every_network_not_only_its_own(
    net: NetworkOps,
) -> None:
    with pytest.raises(Forbidden, match="belongs to service web"):
        await net.attach("back", container(WORKER, "c1", "web"))


async def test_a_task_s_name_is_not_a_container_s_to_take(net: NetworkOps) -> None:
    with pytest.raises(Forbidden, match=r"already exists in network front: task web\.1\.t1"):
        await net.attach("front", container(WORKER, "c1", "app", aliases=("web.1.t1",)))


async def test_another_node_s_container_name_or_alias_is_refused_as_docker_does(
    net: NetworkOps,
) -> None:
    await net.attach("front", container(OTHER, "c2", "db", aliases=("cache",)))
    with pytest.raises(Forbidden, match="endpoint with name db already exists in network front"):
        await net.attach("front", container(WORKER, "c1", "db"))
    with pytest.raises(Forbidden, match="on node h3"):
        await net.attach("front", container(WORKER, "c1", "app", aliases=("cache",)))
    with pytest.raises(Forbidden, match=r"name db\.front already exists"):
        await net.attach("front", container(WORKER, "c1", "app", aliases=("db.front",)))


async def test_names_are_per_network_and_a_node_s_own_containers_may_share_an_alias(
    net: NetworkOps,
) -> None:
    await net.attach("front", container(OTHER, "c2", "db"))
    elsewhere = await net.attach("back", container(WORKER, "c1", "db"))
    assert elsewhere.name == "db"
    await net.attach("front", container(WORKER, "c3", "one", aliases=("pool",)))
    second = await net.attach("front", container(WORKER, "c4", "two", aliases=("pool",)))
    assert second.aliases == ("pool",)


async def test_a_container_id_of_another_node_is_not_taken(net: NetworkOps) -> None:
    await net.attach("front", container(OTHER, "c2", "db"))
    with pytest.raises(Forbidden, match="c2 belongs to another node"):
        await net.attach("front", container(WORKER, "c2", "other"))


# the ingress sandbox ---------------------------------------------------------------------------
async def test_a_node_gets_one_ingress_sandbox_endpoint_named_by_the_managers(
    net: NetworkOps,
) -> None:
    endpoint = await net.attach("ingress", Ask(WORKER, "", "", kind="sandbox"))
    assert endpoint.kind == EndpointKind.SANDBOX
    assert (endpoint.owner_id, endpoint.name) == (f"ingress-{WORKER}", "ingress-sbox-h2")
    with pytest.raises(Conflict, match="already has its ingress sandbox endpoint"):
        await net.attach("ingress", Ask(WORKER, "", "", kind="sandbox"))
    other = await net.attach("ingress", Ask(OTHER, "", "", kind="sandbox"))
    assert other.node_id == OTHER


async def test_a_sandbox_endpoint_lives_on_ingress_only(net: NetworkOps) -> None:
    with pytest.raises(Forbidden, match="not the ingress network"):
        await net.attach("front", Ask(WORKER, "", "", kind="sandbox"))


async def test_an_older_agent_s_sandbox_ask_naming_it_as_the_managers_do_is_taken(
    net: NetworkOps,
) -> None:
    older = Ask(WORKER, f"ingress-{WORKER}", "ingress-sbox-h2", kind="sandbox")
    endpoint = await net.attach("ingress", older)
    assert (endpoint.kind, endpoint.name) == (EndpointKind.SANDBOX, "ingress-sbox-h2")


@pytest.mark.parametrize(
    "more",
    [
        {"owner_id": "task1"},
        {"owner_id": f"ingress-{OTHER}"},
        {"name": "web"},
        {"name": "ingress-sbox-h3"},
        {"aliases": ("web",)},
        {"hostname": "web"},
        {"ip": "10.0.3.9"},
    ],
)
async def test_a_sandbox_ask_carries_nothing_the_managers_decide(
    net: NetworkOps, more: dict[str, object]
) -> None:
    ask = {"owner_id": "", "name": "", **more}
    with pytest.raises(InvalidArgument, match=f"{next(iter(more))} is not taken"):
        await net.attach("ingress", Ask(WORKER, kind="sandbox", **ask))  # type: ignore[arg-type]


# release ---------------------------------------------------------------------------------------
async def test_a_node_releases_its_own_containers_and_sandbox_but_not_its_tasks(
    net: NetworkOps,
) -> None:
    front = net.find("front")
    task = next(e for e in net.endpoints(front.net_id) if e.kind == EndpointKind.TASK)
    with pytest.raises(Forbidden, match="task endpoint: the managers free it"):
        await net.release(front.net_id, task.ep_id, node_id=OTHER)
    assert any(e.ep_id == task.ep_id for e in net.endpoints(front.net_id))
    mine = await net.attach("front", container(WORKER, "c1", "app"))
    with pytest.raises(Conflict, match="another node"):
        await net.release(front.net_id, mine.ep_id, node_id=OTHER)
    await net.release(front.net_id, mine.ep_id, node_id=WORKER)
    sandbox = await net.attach("ingress", Ask(WORKER, "", "", kind="sandbox"))
    await net.release(sandbox.net_id, sandbox.ep_id, node_id=WORKER)
    assert net.endpoints(sandbox.net_id) == []
