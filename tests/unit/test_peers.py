from ferry.model.network import Endpoint, EndpointKind
from ferry.network.peers import Peer, PeerPlan, applied, desired_peers, plan_peers


def ep(ep_id: str, node: str, ip: str) -> Endpoint:
    mac = "02:42:0a:00:00:" + ip.rsplit(".", 1)[1].zfill(2)
    return Endpoint(ep_id, "net", node, ip, mac, EndpointKind.CONTAINER, "owner", ep_id)


VTEPS = {"n1": "10.99.0.11", "n2": "10.99.0.12", "n3": "10.99.0.13"}


def test_only_endpoints_on_other_known_hosts_are_peers() -> None:
    endpoints = [ep("a", "n1", "10.0.0.2"), ep("b", "n2", "10.0.0.3"), ep("c", "n9", "10.0.0.4")]
    peers = desired_peers(endpoints, "n1", VTEPS)
    assert peers == frozenset({Peer("10.0.0.3", "02:42:0a:00:00:03", "10.99.0.12")})


def test_an_empty_kernel_gets_everything_added() -> None:
    peers = frozenset({Peer("10.0.0.3", "m3", "10.99.0.12"), Peer("10.0.0.4", "m4", "10.99.0.13")})
    plan = plan_peers(peers, {}, {})
    assert plan.fdb_add == (("m3", "10.99.0.12"), ("m4", "10.99.0.13"))
    assert plan.neigh_add == (("10.0.0.3", "m3"), ("10.0.0.4", "m4"))
    assert not plan.fdb_del and not plan.neigh_del


def test_a_matching_kernel_needs_nothing() -> None:
    peers = frozenset({Peer("10.0.0.3", "m3", "10.99.0.12")})
    plan = plan_peers(peers, {"m3": "10.99.0.12"}, {"10.0.0.3": "m3"})
    assert plan.empty
    assert len(plan) == 0


def test_stale_entries_are_removed_and_moved_ones_replaced() -> None:
    desired = frozenset({Peer("10.0.0.3", "m3", "10.99.0.13")})  # moved from n2 to n3
    fdb = {"m3": "10.99.0.12", "m9": "10.99.0.12"}
    neigh = {"10.0.0.3": "m3", "10.0.0.9": "m9"}
    plan = plan_peers(desired, fdb, neigh)
    assert plan.fdb_add == (("m3", "10.99.0.13"),)
    assert plan.fdb_del == (("m9", "10.99.0.12"),)
    assert plan.neigh_add == ()
    assert plan.neigh_del == ("10.0.0.9",)


def test_an_address_reused_by_another_mac_updates_the_neighbour_entry() -> None:
    desired = frozenset({Peer("10.0.0.3", "m7", "10.99.0.12")})
    plan = plan_peers(desired, {"m3": "10.99.0.12"}, {"10.0.0.3": "m3"})
    assert plan.neigh_add == (("10.0.0.3", "m7"),)
    assert plan.fdb_del == (("m3", "10.99.0.12"),)


def test_applying_a_plan_yields_exactly_the_desired_state() -> None:
    desired = frozenset(
        {Peer("10.0.0.3", "m3", "10.99.0.13"), Peer("10.0.0.5", "m5", "10.99.0.12")}
    )
    fdb = {"m3": "10.99.0.12", "m9": "10.99.0.12"}
    neigh = {"10.0.0.3": "m3", "10.0.0.9": "m9"}
    new_fdb, new_neigh = applied(plan_peers(desired, fdb, neigh), fdb, neigh)
    assert new_fdb == {"m3": "10.99.0.13", "m5": "10.99.0.12"}
    assert new_neigh == {"10.0.0.3": "m3", "10.0.0.5": "m5"}
    assert plan_peers(desired, new_fdb, new_neigh) == PeerPlan()
