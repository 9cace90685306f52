from ferry.kernel.wireguard import Tunnel
from ferry.model.node import Node, Role
from ferry.network.encryption import (
    desired_tunnels,
    guard_rules,
    plan_tunnels,
    tunnel_ifname,
)


def node(node_id: str, addr: str, key: str = "", *, left: bool = False) -> Node:
    return Node(node_id, node_id, Role.WORKER, addr, wg_key=key, left=left)


def test_tunnels_go_to_every_other_node_that_reported_a_key() -> None:
    nodes = [
        node("me", "10.0.0.1", "k-me"),
        node("a", "10.0.0.2", "k-a"),
        node("b", "10.0.0.3"),  # no key yet: an agent that has not beaten since it started
        node("c", "10.0.0.4", "k-c", left=True),
    ]
    assert desired_tunnels(nodes, "me") == {Tunnel("k-a", "10.0.0.2")}


def test_the_plan_adds_moves_and_removes_only_what_differs() -> None:
    desired = frozenset({Tunnel("k-a", "10.0.0.2"), Tunnel("k-b", "10.0.0.9")})
    held = {Tunnel("k-a", "10.0.0.2"), Tunnel("k-b", "10.0.0.3"), Tunnel("k-gone", "10.0.0.7")}
    plan = plan_tunnels(desired, held, {"10.0.0.2", "10.0.0.3", "10.0.0.7"})
    assert plan.add == (Tunnel("k-b", "10.0.0.9"),)  # its host moved
    assert plan.remove == ("k-gone",)
    assert plan.routes_add == ("10.0.0.9",)
    assert plan.routes_del == ("10.0.0.3", "10.0.0.7")
    assert plan_tunnels(desired, set(desired), {"10.0.0.2", "10.0.0.9"}).empty


def test_device_names_fit_linux_and_differ_per_daemon() -> None:
    names = {tunnel_ifname(f"lab-h{i}-") for i in range(1, 50)}
    assert len(names) == 49
    assert all(len(n) <= 15 for n in names)
    assert tunnel_ifname("") == "ferry_wg"


def test_the_guard_drops_encrypted_vxlan_that_did_not_come_out_of_the_tunnel() -> None:
    assert 'udp dport 4790 iifname != "fwg0" drop' in guard_rules("fwg0", 4790)
    assert 'udp dport 7790 iifname != "fwg0" drop' in guard_rules("fwg0", 7790)
