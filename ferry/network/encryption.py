"""Encrypted overlays: VXLAN carried inside WireGuard between hosts.

Design notes. An encrypted network's VXLAN device sends to the swarm's data-path port + 1
(``model.ports.encrypted_port``: 4790 with the default 4789) instead of the data-path port,
and a routing rule sends every UDP packet for that port through table 4790, which holds one
route per peer host, into the WireGuard device. The rule after it drops what that table has
no route for, so an encrypted network's frames never take the ordinary route: to a host
without a tunnel they are dropped, not sent in clear. Inbound, a firewall rule drops UDP to
the encrypted port that did not come out of the tunnel, so nobody on the underlay can inject
frames into an encrypted network. Unencrypted overlays are untouched (the data-path port,
the main table). The table and rule numbers are fixed (4790): they name kernel objects, not
ports.

WireGuard peers are the other nodes of the swarm that reported a key: each is reached at its
advertised address, port 51820, and only that address is allowed through its tunnel. Keys are
per node, made on first use and kept in the node's state directory; each node reports its
public key in its heartbeats, so the managers' node records carry them.

All of this exists on a host only while it has an endpoint on an encrypted network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ferry.kernel.wireguard import Tunnel
from ferry.model.node import Node

WIREGUARD_OVERHEAD = 80  # outer IPv4 20 + UDP 8 + WireGuard 32, rounded as wg-quick does
ROUTE_TABLE = 4790
RULE_PREF = 4790  # and RULE_PREF + 1, the drop after it
GUARD_TABLE = "ferry_encrypt"


def tunnel_ifname(netns_prefix: str) -> str:
    """The WireGuard device's name: unique per ferryd (lab hosts share /var/run/wireguard)."""
    if not netns_prefix:
        return "ferry_wg"
    return "fwg" + hashlib.sha256(netns_prefix.encode()).hexdigest()[:10]


def desired_tunnels(nodes: Iterable[Node], local_node: str) -> frozenset[Tunnel]:
    """A tunnel to every other node that reported a key (left nodes excluded)."""
    return frozenset(
        Tunnel(n.wg_key, n.addr)
        for n in nodes
        if n.node_id != local_node and n.wg_key and n.addr and not n.left
    )


@dataclass(frozen=True)
class TunnelPlan:
    add: tuple[Tunnel, ...] = ()  # new peers, or peers whose address changed
    remove: tuple[str, ...] = ()  # keys
    routes_add: tuple[str, ...] = ()  # peer addresses
    routes_del: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.add or self.remove or self.routes_add or self.routes_del)


def plan_tunnels(desired: frozenset[Tunnel], held: set[Tunnel], routes: set[str]) -> TunnelPlan:
    """The changes that turn the device's peers (``held``) and table ``ROUTE_TABLE``'s
    destinations (``routes``, host addresses) into exactly ``desired``."""
    want = {t.key: t.addr for t in desired}
    have = {t.key: t.addr for t in held}
    addrs = {t.addr for t in desired}
    return TunnelPlan(
        add=tuple(sorted(t for t in desired if have.get(t.key) != t.addr)),
        remove=tuple(sorted(k for k in have if k not in want)),
        routes_add=tuple(sorted(addrs - routes)),
        routes_del=tuple(sorted(routes - addrs)),
    )


def guard_rules(ifname: str, port: int) -> str:
    """The inbound guard: encrypted VXLAN (UDP ``port``) is accepted only out of the
    tunnel."""
    return (
        "  chain input {\n"
        "    type filter hook input priority filter; policy accept;\n"
        f'    udp dport {port} iifname != "{ifname}" drop\n'
        "  }\n"
    )
