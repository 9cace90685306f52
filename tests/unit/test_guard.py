"""The host guard as plain data: its nftables text, and the order its reconciler keeps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ferry.agent import guard as guard_agent
from ferry.agent.guard import HostGuard, node_addresses
from ferry.kernel.thread import KernelThread
from ferry.manager.store import keys
from ferry.manager.store.schema import MANAGER_TYPES
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode
from ferry.model.mirror import Mirror
from ferry.model.network import Driver, Network, Scope
from ferry.model.node import Node, Role
from ferry.model.ports import reserved_ports
from ferry.network.guard import (
    CONTAINER_IFGROUP,
    GuardSpec,
    cluster_ranges,
    render,
    render_inet,
    render_netdev,
)

SPEC = GuardSpec(
    nodes=frozenset({"10.99.0.12", "10.99.0.11", "192.168.5.7"}),
    underlay=frozenset({"10.99.0.0/24"}),
    macvlan_parents=(("eth0", "02:42:0a:63:00:0b"),),
    data_path_port=4789,
)
GROUP = f"iifgroup {CONTAINER_IFGROUP:#x}"


def chain(body: str, name: str) -> list[str]:
    """The lines of one chain of a rendered body."""
    lines = body.splitlines()
    start = lines.index(f"  chain {name} {{")
    end = lines.index("  }", start)
    return [line.strip() for line in lines[start + 1 : end]]


def test_every_reserved_port_is_in_the_set_the_rules_match() -> None:
    body = render_inet(SPEC)
    for port in reserved_ports(4789):
        assert f"{port.protocol} . {port.port}" in body
    assert "tcp . 2377, tcp . 2379, tcp . 2380, udp . 4789, udp . 4790, udp . 51820" in body


def test_the_swarms_data_path_port_and_its_companion_are_guarded_instead_of_4789() -> None:
    spec = replace(SPEC, data_path_port=7789)
    for body in render(spec):
        assert "tcp . 2377, tcp . 2379, tcp . 2380, udp . 7789, udp . 7790, udp . 51820" in body
        assert "4789" not in body and "4790" not in body
    assert chain(render_inet(spec), "input")[2:] == [
        "meta nfproto ipv4 udp dport { 7789, 7790 } ip saddr != @nodes drop",
        "meta nfproto ipv6 udp dport { 7789, 7790 } drop",
    ]


def test_containers_reach_no_reserved_port_and_no_loopback_on_any_address_of_the_host() -> None:
    body = render_inet(SPEC)
    assert f"{GROUP} jump from_containers" in chain(body, "input")
    assert chain(body, "from_containers") == [
        "ct direction reply return",
        "ip daddr 127.0.0.0/8 drop",
        "meta l4proto . th dport @reserved drop",  # no address match: every local address
    ]


def test_containers_reach_no_reserved_port_of_another_node_or_anything_on_the_underlay() -> None:
    body = render_inet(SPEC)
    assert chain(body, "forward") == [
        "type filter hook forward priority filter - 10; policy accept;",
        f"{GROUP} jump through_containers",
    ]
    assert chain(body, "through_containers") == [
        "ct direction reply return",
        "ip daddr @cluster meta l4proto . th dport @reserved drop",
    ]
    # nodes inside the underlay's subnet merge into it: nft refuses overlapping intervals
    assert cluster_ranges(SPEC) == ["10.99.0.0/24", "192.168.5.7/32"]
    assert "elements = { 10.99.0.0/24, 192.168.5.7/32 }" in body


def test_vxlan_is_accepted_only_from_the_nodes_advertise_addresses() -> None:
    body = render_inet(SPEC)
    assert "elements = { 10.99.0.11, 10.99.0.12, 192.168.5.7 }" in body
    assert chain(body, "input")[2:] == [
        "meta nfproto ipv4 udp dport { 4789, 4790 } ip saddr != @nodes drop",
        "meta nfproto ipv6 udp dport { 4789, 4790 } drop",
    ]


def test_outside_a_swarm_no_vxlan_is_accepted_and_containers_are_still_kept_off() -> None:
    body = render_inet(GuardSpec(data_path_port=4789))
    nodes = body.split("  set cluster")[0]
    assert "elements" not in nodes  # an empty set: "saddr != @nodes" drops every datagram
    assert "ip saddr != @nodes drop" in body
    assert f"{GROUP} jump from_containers" in body
    assert render_netdev(GuardSpec(data_path_port=4789)) == ""  # no macvlan parent, no netdev table


def test_a_macvlan_parent_drops_reserved_ports_from_every_mac_but_its_own() -> None:
    body = render_netdev(SPEC)
    assert chain(body, "egress0") == [
        'type filter hook egress device "eth0" priority filter; policy accept;',
        "ether saddr != 02:42:0a:63:00:0b ip daddr @cluster meta l4proto . th dport @reserved drop",
    ]
    two = GuardSpec(
        SPEC.nodes, SPEC.underlay, (("eth1", "02:00:00:00:00:02"), *SPEC.macvlan_parents),
        data_path_port=4789,
    )  # fmt: skip
    both = render_netdev(two)
    assert 'device "eth0"' in chain(both, "egress0")[0]
    assert 'device "eth1"' in chain(both, "egress1")[0]


def test_both_tables_render_together_in_a_fixed_order() -> None:
    assert render(SPEC) == (render_inet(SPEC), render_netdev(SPEC))


# the reconciler ----------------------------------------------------------------------------


def node(node_id: str, addr: str, *, left: bool = False) -> Node:
    return Node(node_id=node_id, hostname=node_id, role=Role.WORKER, addr=addr, left=left)


def mirror_of(*nodes: Node) -> Mirror:
    mirror = Mirror(MANAGER_TYPES)
    mirror.reset([(keys.node(n.node_id), encode(n), 1) for n in nodes], 1)
    return mirror


def test_nodes_that_left_or_have_no_ipv4_address_are_not_trusted() -> None:
    view = ClusterView(
        mirror_of(node("a", "10.99.0.11"), node("b", "10.99.0.12", left=True), node("c", "x"))
    )
    assert node_addresses(view) == frozenset({"10.99.0.11"})


class FakeTables:
    """KeptTables without a kernel: what was applied, and what the kernel held before."""

    def __init__(self, held: frozenset[str] | None) -> None:
        self.held = held
        self.applied: list[tuple[str, ...]] = []

    def stale(self, bodies: tuple[str, ...]) -> bool:
        return not self.applied or self.applied[-1] != bodies

    def apply(self, bodies: tuple[str, ...]) -> None:
        self.applied.append(bodies)

    def set_addresses(self, *_args: str) -> frozenset[str] | None:
        return self.held

    def forget(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Any:
    def facts(advertise: str, parents: set[str]) -> Any:
        return frozenset({"10.99.0.0/24"} if advertise else set()), ()

    monkeypatch.setattr(guard_agent, "host_facts", facts)

    def make(advertise: str, held: frozenset[str] | None) -> tuple[HostGuard, FakeTables]:
        guard = HostGuard(
            KernelThread(), advertise_addr=lambda: advertise, macvlan_parents=set,
            data_path_port=lambda: 4789,
        )  # fmt: skip
        tables = FakeTables(held)
        guard._tables = tables  # type: ignore[assignment]
        return guard, tables

    return make


def nodes_in(bodies: tuple[str, ...]) -> str:
    return bodies[0].split("  set cluster")[0]


async def test_a_restarted_member_keeps_the_nodes_the_kernel_holds_until_its_mirror_syncs(
    rig: Any,
) -> None:
    guard, tables = rig("10.99.0.11", frozenset({"10.99.0.11", "10.99.0.12"}))
    await guard.reconcile()  # no agent yet (the swarm is being restored)
    assert "10.99.0.11, 10.99.0.12" in nodes_in(tables.applied[-1])
    unsynced = ClusterView(Mirror(MANAGER_TYPES))
    guard.follow(unsynced)
    await guard.reconcile()
    assert "10.99.0.11, 10.99.0.12" in nodes_in(tables.applied[-1])
    unsynced.mirror.reset([(keys.node("a"), encode(node("a", "10.99.0.11")), 2)], 2)
    await guard.reconcile()
    assert "10.99.0.12" not in nodes_in(tables.applied[-1])  # the mirror speaks now
    guard.unfollow()  # the agent stops (ferryd restarts): the last nodes stay
    await guard.reconcile()
    assert "10.99.0.11" in nodes_in(tables.applied[-1])


async def test_a_host_outside_a_swarm_or_that_left_accepts_no_vxlan(rig: Any) -> None:
    guard, tables = rig("", frozenset({"10.99.0.12"}))  # stale kernel state from elsewhere
    await guard.reconcile()
    assert "elements" not in nodes_in(tables.applied[-1])
    member, held = rig("10.99.0.11", None)
    member.follow(ClusterView(mirror_of(node("a", "10.99.0.11"), node("b", "10.99.0.12"))))
    await member.reconcile()
    assert "10.99.0.11, 10.99.0.12" in nodes_in(held.applied[-1])
    member.forget_swarm()
    await member.reconcile()
    assert "elements" not in nodes_in(held.applied[-1])


async def test_the_mirror_marks_the_guard_only_for_node_changes(rig: Any) -> None:
    guard, _tables = rig("10.99.0.11", None)
    mirror = mirror_of(node("a", "10.99.0.11"))
    guard.follow(ClusterView(mirror))
    guard._dirty.clear()
    net = Network("n1" * 32, "front", Driver.OVERLAY, Scope.SWARM, "10.0.1.0/24", "10.0.1.1")
    mirror.apply([(keys.network(net.net_id), encode(net), 5)])
    assert not guard._dirty.is_set()
    mirror.apply([(keys.node("b"), encode(node("b", "10.99.0.12")), 6)])
    assert guard._dirty.is_set()
