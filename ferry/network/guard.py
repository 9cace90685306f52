"""The host guard: which of Ferry's own ports containers may never reach, and where VXLAN may
come from (pure: the plan and its nftables text).

Design notes. VXLAN has no authentication (RFC 7348 §7): whoever can send a UDP datagram to a
node's data-path port (4789 unless the swarm chose another) can put any Ethernet frame into
any overlay on it, and the VXLAN device's socket listens on every address of the host.
Docker leaves this to the operator's firewall (moby advisory GHSA-vwm3-crmr-xfxw: "the VXLAN
port must never be exposed to untrusted traffic"); since CVE-2023-28840 it drops clear VXLAN
only for the VNIs of encrypted networks. Its containers can still send to the VXLAN port of
their own host through docker0. Ferry closes that door itself, with two tables per host,
replaced together in one transaction:

- ``table inet ferry_guard`` (IPv4 and IPv6):
  - ``input`` from a container-facing interface (any of them: the egress bridge, every local
    bridge network) to *any* of the host's own addresses — its underlay address, a bridge's
    gateway, 127.0.0.1 through ``route_localnet`` — on a reserved port: dropped. Packets from
    containers to 127.0.0.0/8 are dropped whatever the port (the hole behind CVE-2020-8558:
    ``route_localnet`` lets a crafted packet reach the host's loopback services).
  - ``forward`` from a container-facing interface to a cluster address (a node's advertise
    address, or anything on the underlay's own subnets) on a reserved port: dropped. A
    masqueraded datagram leaves with the node's own source address, so the receiving node
    could not tell it from real VXLAN: it has to be stopped here, on its way out.
  - ``input`` UDP to the swarm's VXLAN pair (the data-path port and its encrypted companion,
    ``model.ports.vxlan_ports``) is accepted only from the advertise addresses of the
    cluster's nodes (none before the swarm exists): a LAN host can no longer inject either.
  Replies (``ct direction reply``) pass: a container answering a client whose source port
  happens to be 51820 is not sending *to* Ferry.
- ``table netdev ferry_guard``: a macvlan container is a host on the LAN, and its frames leave
  through the parent's transmit path without crossing the host's IP stack. An ``egress`` hook
  on each macvlan parent drops frames to a cluster address on a reserved port unless they carry
  the parent's own MAC (the host's traffic).

Container-facing interfaces are matched by interface group, not by name: Ferry creates every
bridge a container can route through already in ``CONTAINER_IFGROUP`` (netlink sets the group
in the same message that creates the link), so the rules hold for a new bridge from its first
packet, with no per-bridge update and no window between bridge and rule. A container's own
namespace is out of reach of the rules; the rules are out of the container's reach.

Be aware: a macvlan container that forges the parent's MAC on a raw socket (it has
CAP_NET_RAW) gets past the egress hook, and with a forged source address past the VXLAN source
check too: on a macvlan network, plain overlays are only as safe as the LAN is trusted.
Encrypted overlays are not affected (WireGuard authenticates every packet, and ``ferry_encrypt``
drops clear datagrams to the encrypted port). Node addresses other than the advertise address
that lie outside the underlay's subnets are not known to the guard.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from ferry.model.ports import reserved_ports, vxlan_ports

TABLE = "ferry_guard"
FAMILIES = ("inet", "netdev")  # the two tables, in the order ``render`` returns their bodies
CONTAINER_IFGROUP = 0x4672  # "Fr": every bridge that containers route through is born in it
LOOPBACK = "127.0.0.0/8"


@dataclass(frozen=True)
class GuardSpec:
    """What the guard is computed from.

    ``nodes``: advertise addresses of the cluster's nodes, this one included (empty: no swarm,
    so no VXLAN is accepted). ``underlay``: the subnets (CIDR) of the interface holding this
    node's advertise address. ``macvlan_parents``: (device, its own MAC) of every parent
    interface a local macvlan network uses. ``data_path_port``: the swarm's VXLAN port (this
    host's default outside a swarm); it and its encrypted companion are reserved too.
    """

    nodes: frozenset[str] = frozenset()
    underlay: frozenset[str] = frozenset()
    macvlan_parents: tuple[tuple[str, str], ...] = ()
    data_path_port: int = field(kw_only=True)


def cluster_ranges(spec: GuardSpec) -> list[str]:
    """Node addresses and underlay subnets, merged: nft refuses overlapping interval
    elements."""
    nets = [ipaddress.ip_network(f"{a}/32") for a in spec.nodes]
    nets += [ipaddress.ip_network(c, strict=False) for c in spec.underlay]
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    return [str(n) for n in ipaddress.collapse_addresses(v4)]


def render(spec: GuardSpec) -> tuple[str, str]:
    """The bodies of ``inet ferry_guard`` and ``netdev ferry_guard`` ("" for no table)."""
    return render_inet(spec), render_netdev(spec)


def render_inet(spec: GuardSpec) -> str:
    vxlan = _set_text(str(p) for p in vxlan_ports(spec.data_path_port))
    body = _set("nodes", "ipv4_addr", sorted(spec.nodes, key=ipaddress.IPv4Address))
    body += _set("cluster", "ipv4_addr", cluster_ranges(spec), interval=True)
    body += _reserved_set(spec.data_path_port)
    body += _chain(
        "input",
        "type filter hook input priority filter - 10; policy accept;",
        f"iifgroup {CONTAINER_IFGROUP:#x} jump from_containers",
        f"meta nfproto ipv4 udp dport {vxlan} ip saddr != @nodes drop",
        f"meta nfproto ipv6 udp dport {vxlan} drop",
    )
    body += _chain(
        "forward",
        "type filter hook forward priority filter - 10; policy accept;",
        f"iifgroup {CONTAINER_IFGROUP:#x} jump through_containers",
    )
    body += _chain(
        "from_containers",
        "",
        "ct direction reply return",
        f"ip daddr {LOOPBACK} drop",
        "meta l4proto . th dport @reserved drop",
    )
    body += _chain(
        "through_containers",
        "",
        "ct direction reply return",
        "ip daddr @cluster meta l4proto . th dport @reserved drop",
    )
    return body


def render_netdev(spec: GuardSpec) -> str:
    if not spec.macvlan_parents:
        return ""
    body = _set("cluster", "ipv4_addr", cluster_ranges(spec), interval=True)
    body += _reserved_set(spec.data_path_port)
    for i, (device, mac) in enumerate(sorted(spec.macvlan_parents)):
        body += _chain(
            f"egress{i}",
            f'type filter hook egress device "{device}" priority filter; policy accept;',
            f"ether saddr != {mac} ip daddr @cluster meta l4proto . th dport @reserved drop",
        )
    return body


def _reserved_set(data_path_port: int) -> str:
    elements = [f"{r.protocol} . {r.port}" for r in sorted(reserved_ports(data_path_port))]
    return _set("reserved", "inet_proto . inet_service", elements)


def _set(name: str, kind: str, elements: Iterable[str], *, interval: bool = False) -> str:
    text = f"  set {name} {{\n    type {kind}\n"
    if interval:
        text += "    flags interval\n"
    items = list(elements)
    if items:
        text += f"    elements = {_set_text(items)}\n"
    return text + "  }\n"


def _set_text(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _chain(name: str, hook: str, *rules: str) -> str:
    lines = ([hook] if hook else []) + list(rules)
    return f"  chain {name} {{\n" + "".join(f"    {line}\n" for line in lines) + "  }\n"
