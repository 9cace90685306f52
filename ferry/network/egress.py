"""The egress bridge's subnet as plain data: the one this host keeps, or the one it takes.

Design notes. Docker allocates docker_gwbridge's subnet from the local default address pools
like any bridge network (libnetwork's ipamutils; with Docker's default pools it gets
172.18.0.0/16, after the default bridge's 172.17.0.0/16). Ferry does the same, once per host:
at ferryd's first start, right after the default bridge, the first free ``/size`` of the
pools (daemon.json ``default-address-pools``, else Docker's) that overlaps no network Ferry
knows, no route of the host and no address of the host. The choice is then kept in a record,
the one source of truth, and never moved by ferryd: containers and the routing mesh's sandbox
hold addresses in it, and the host's masquerade and published-port rules name it. A bridge
found in the kernel without a record (made by a ferryd from before the record) is kept as it
is. Be aware: a changed ``default-address-pools`` therefore reaches only a fresh host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ferry.errors import PoolExhausted
from ferry.model.network import EgressSubnet
from ferry.network.local import choose_bridge_subnet


class EgressSource(StrEnum):
    RECORD = "record"  # this host's record: the subnet it has used so far
    BRIDGE = "bridge"  # the bridge in the kernel, made before there was a record
    POOLS = "pools"  # newly taken from the address pools


@dataclass(frozen=True)
class EgressChoice:
    egress: EgressSubnet
    source: EgressSource


def kept_egress(saved: EgressSubnet | None, bridge_cidrs: Iterable[str]) -> EgressChoice | None:
    """The subnet this host already uses: its record's, else that of the bridge's first IPv4
    address in the kernel (``"172.18.0.1/16"``); None on a fresh host."""
    if saved is not None:
        return EgressChoice(saved, EgressSource.RECORD)
    for cidr in bridge_cidrs:
        network = ipaddress.IPv4Interface(cidr).network
        return EgressChoice(EgressSubnet(str(network)), EgressSource.BRIDGE)
    return None


def plan_egress(
    taken: Iterable[str],
    routes: Iterable[str],
    addresses: Iterable[str],
    pools: tuple[tuple[str, int], ...],
) -> EgressChoice:
    """A new egress subnet: the first free ``/size`` of ``pools`` (Docker's order) overlapping
    none of ``taken`` (the subnets of the networks Ferry knows here), ``routes`` (destinations
    of the host's routes) and ``addresses`` (the host's own, ``"ip/prefix"``: an address may
    have no route of its own). PoolExhausted (503) when the pools are full."""
    own = [f"{ipaddress.IPv4Interface(cidr).ip}/32" for cidr in addresses]
    try:
        subnet = choose_bridge_subnet([*taken, *routes, *own], pools)
    except PoolExhausted as exc:  # its advice (--subnet) is a network create's, not ours
        shown = ", ".join(f"{base} (/{size})" for base, size in pools)
        raise PoolExhausted(
            f"no free subnet left in the local address pools {shown} for the egress bridge "
            "ferry_gwbridge (the host's routes, addresses and networks take them): add a pool "
            "to daemon.json's default-address-pools"
        ) from exc
    return EgressChoice(EgressSubnet(str(subnet)), EgressSource.POOLS)


def from_pools(egress: EgressSubnet, pools: tuple[tuple[str, int], ...]) -> bool:
    """Whether ``egress`` is a subnet the pools would give (inside one, of its size)."""
    network = egress.network
    return any(
        network.subnet_of(ipaddress.IPv4Network(pool)) and network.prefixlen == size
        for pool, size in pools
    )


def clashes(egress: EgressSubnet, routes: Iterable[str]) -> list[str]:
    """The host's routes that overlap a kept egress subnet, but the bridge's own connected
    route (the egress subnet itself)."""
    network = egress.network
    return [
        route
        for route in routes
        if ipaddress.ip_network(route, strict=False) != network
        and network.overlaps(ipaddress.ip_network(route, strict=False))
    ]
