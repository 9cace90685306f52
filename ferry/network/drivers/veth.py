"""A container's leg on a bridge, the same for overlay, local bridge and egress networks.

A veth pair: the outer end becomes a port of the bridge (isolated from the other ports where
containers must not talk to each other), the inner end is the container's interface, with
the endpoint's MAC (derived from its address, so peers can be programmed without ARP) and
address, and optionally the container's default route.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ferry.kernel.netlink import Netlink


@dataclass(frozen=True)
class Leg:
    outer: str  # name of the bridge-side end
    inner: str  # the container's interface (eth0, eth1, ...)
    mac: str
    cidr: str  # address/prefix length
    bridge: str
    mtu: int | None = None  # None: the kernel's default
    isolated: bool = False
    gateway: str = ""  # set: the container's default route goes through it


def plug(host: Netlink, netns: Path, leg: Leg) -> None:
    """Wire ``leg`` from the namespace ``host`` holds into the container's ``netns``."""
    host.delete_link(leg.outer)  # a stale one from a crash: start clean
    host.add_veth(leg.outer, leg.inner, netns)
    try:
        host.set_link(leg.outer, master=leg.bridge, mtu=leg.mtu, up=True)
        if leg.isolated:
            host.set_bridge_port(leg.outer, isolated=True)
        with Netlink(netns) as inner:
            inner.set_link(leg.inner, mac=leg.mac, mtu=leg.mtu)
            inner.add_address(leg.inner, leg.cidr)
            inner.set_link(leg.inner, up=True)
            if leg.gateway:
                inner.replace_route("0.0.0.0/0", gateway=leg.gateway)
    except BaseException:
        host.delete_link(leg.outer)
        raise
