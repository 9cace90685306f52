import pytest

from ferry.errors import (
    Conflict,
    Forbidden,
    InvalidArgument,
    NotFound,
    PoolExhausted,
    SubnetOverlap,
)
from ferry.manager.admission import Ask
from ferry.manager.networks import NetworkOps
from ferry.manager.store import Put, keys
from ferry.model.codec import encode
from ferry.model.network import NetworkRequest
from ferry.model.node import Node, Role
from tests.unit.conftest import ManagerRig


def ops(rig: ManagerRig) -> NetworkOps:
    return NetworkOps(rig.store, rig.view, rig.feed)


@pytest.fixture(autouse=True)
async def _nodes(rig: ManagerRig) -> None:
    """The nodes that ask for endpoints here: only members of the swarm may."""
    await rig.add_node("n1", "h1")
    await rig.add_node("n2", "h2")


async def test_networks_get_distinct_subnets_and_vnis(rig: ManagerRig) -> None:
    net = ops(rig)
    a = await net.create(NetworkRequest("a"))
    b = await net.create(NetworkRequest("b", attachable=True))
    assert (a.subnet, a.vni) == ("10.0.0.0/24", 4097)
    assert (b.subnet, b.vni) == ("10.0.1.0/24", 4098)
    assert b.gateway == "10.0.1.1"
    assert [n.name for n in net.all()] == ["a", "b"]


async def test_names_and_subnets_must_be_unique(rig: ManagerRig) -> None:
    net = ops(rig)
    await net.create(NetworkRequest("a", subnet="10.5.0.0/16"))
    with pytest.raises(Conflict, match="already exists"):
        await net.create(NetworkRequest("a"))
    with pytest.raises(SubnetOverlap, match="'a'"):
        await net.create(NetworkRequest("b", subnet="10.5.3.0/24"))
    with pytest.raises(InvalidArgument):
        await net.create(NetworkRequest("bad name!"))
    with pytest.raises(InvalidArgument, match="swarm driver"):
        await net.create(NetworkRequest("c", driver="bridge"))
    with pytest.raises(InvalidArgument, match="mtu"):
        await net.create(NetworkRequest("d", options={"mtu": "50"}))
    with pytest.raises(InvalidArgument, match="mtu"):
        await net.create(NetworkRequest("d", options={"mtu": "big"}))
    with pytest.raises(InvalidArgument, match="option encrypted"):
        await net.create(NetworkRequest("d", options={"encrypted": "maybe"}))
    with pytest.raises(InvalidArgument, match="unknown overlay option"):
        await net.create(NetworkRequest("d", options={"parent": "eth0"}))


async def test_an_encrypted_overlay_keeps_docker_s_option(rig: ManagerRig) -> None:
    created = await ops(rig).create(NetworkRequest("vault", options={"encrypted": ""}))
    assert created.encrypted
    assert created.options["encrypted"] == ""
    plain = await ops(rig).create(NetworkRequest("open"))
    assert not plain.encrypted


async def test_attachments_get_the_lowest_free_address_and_a_derived_mac(rig: ManagerRig) -> None:
    net = ops(rig)
    await net.create(NetworkRequest("a", attachable=True))
    first = await net.attach("a", Ask("n1", "c1", "app1"))
    second = await net.attach("a", Ask("n2", "c2", "app2"))
    assert (first.ip, second.ip) == ("10.0.0.2", "10.0.0.3")
    assert first.mac == "02:42:0a:00:00:02"
    await net.release(first.net_id, first.ep_id)
    third = await net.attach("a", Ask("n1", "c3", "app3"))
    assert third.ip == "10.0.0.2"


async def test_a_static_address_that_is_taken_is_refused(rig: ManagerRig) -> None:
    net = ops(rig)
    await net.create(NetworkRequest("a", attachable=True))
    await net.attach("a", Ask("n1", "c1", "app1", ip="10.0.0.7"))
    with pytest.raises(InvalidArgument, match="already in use"):
        await net.attach("a", Ask("n1", "c2", "app2", ip="10.0.0.7"))


async def test_containers_need_an_attachable_network(rig: ManagerRig) -> None:
    net = ops(rig)
    await net.create(NetworkRequest("svc"))
    with pytest.raises(Forbidden, match="attachable"):
        await net.attach("svc", Ask("n1", "c1", "app1"))


async def test_a_full_network_is_pool_exhausted(rig: ManagerRig) -> None:
    net = ops(rig)
    await net.create(NetworkRequest("tiny", subnet="10.9.0.0/30", attachable=True))
    await net.attach("tiny", Ask("n1", "c1", "app1"))
    with pytest.raises(PoolExhausted):
        await net.attach("tiny", Ask("n1", "c2", "app2"))


async def test_a_network_with_endpoints_cannot_be_removed_and_prune_skips_it(
    rig: ManagerRig,
) -> None:
    net = ops(rig)
    await net.create(NetworkRequest("busy", attachable=True))
    await net.create(NetworkRequest("idle"))
    ep = await net.attach("busy", Ask("n1", "c1", "app1"))
    with pytest.raises(Conflict, match="app1"):
        await net.remove("busy")
    assert await net.prune() == ["idle"]
    await net.release(ep.net_id, ep.ep_id)
    await net.remove("busy")
    with pytest.raises(NotFound):
        net.find("busy")


async def test_a_node_cannot_release_another_nodes_endpoint(rig: ManagerRig) -> None:
    net = ops(rig)
    await net.create(NetworkRequest("a", attachable=True))
    ep = await net.attach("a", Ask("n1", "c1", "app1"))
    with pytest.raises(Conflict, match="another node"):
        await net.release(ep.net_id, ep.ep_id, node_id="n2")


async def _node_at(rig: ManagerRig, node_id: str, hostname: str, addr: str) -> None:
    node = Node(node_id=node_id, hostname=hostname, role=Role.WORKER, addr=addr)
    revision = await rig.store.commit([Put(keys.node(node_id), encode(node))])
    assert revision is not None
    await rig.feed.wait_for(revision)


@pytest.mark.parametrize("subnet", ["10.99.0.0/24", "10.99.0.0/30", "10.0.0.0/8"])
async def test_an_overlay_may_not_hold_a_nodes_address(rig: ManagerRig, subnet: str) -> None:
    # the nodes advertise 10.99.0.2 (the underlay): tasks would route it into the overlay
    with pytest.raises(SubnetOverlap, match=r"10\.99\.0\.2 of swarm node h[12] .*overlapping IPv4"):
        await ops(rig).create(NetworkRequest("n4", subnet=subnet))
    assert (await ops(rig).create(NetworkRequest("n5", subnet="10.99.1.0/24"))).name == "n5"


async def test_the_default_pool_skips_a_subnet_holding_a_node(rig: ManagerRig) -> None:
    await _node_at(rig, "n3", "h3", "10.0.0.7")  # an underlay inside the default pool
    await _node_at(rig, "n4", "h4", "10.0.1.200")
    assert (await ops(rig).create(NetworkRequest("a"))).subnet == "10.0.2.0/24"
