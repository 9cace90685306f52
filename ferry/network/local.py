"""Local networks — bridge and macvlan — planned as plain data: the checks a create request
must pass and the network record it becomes.

Design notes. A local network belongs to one host, as Docker's do: no swarm is needed, the
host decides alone, and its record lives in the host's state directory. Bridge networks get a
subnet from Docker's local pools (172.17-31.0.0/16, then 192.168.x.0/20s), skipping any that
overlaps a network Ferry knows or a route the host has, so a new bridge never hides part of the
host's own LAN; a bridge subnet given explicitly that overlaps a route of the host is refused
(Docker: "networks have overlapping IPv4"). A macvlan network is the opposite: its subnet *is*
the LAN of its parent interface, so it must be given, and it may overlap the host's routes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ferry.errors import Conflict, InvalidArgument, NotFound, PoolExhausted
from ferry.model.network import (
    GWBRIDGE,
    MTU_OPTIONS,
    NAME_CHARS,
    Driver,
    Network,
    NetworkRequest,
    Scope,
    check_network_name,
    check_options,
)
from ferry.network import ipam

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
MASQUERADE_OPTION = "com.docker.network.bridge.enable_ip_masquerade"
PARENT_OPTION = "parent"
MODE_OPTION = "macvlan_mode"
BRIDGE_OPTIONS = (BRIDGE_NAME_OPTION, ICC_OPTION, MASQUERADE_OPTION, *MTU_OPTIONS)
MACVLAN_OPTIONS = (PARENT_OPTION, MODE_OPTION)
BOOLEAN_OPTIONS = (ICC_OPTION, MASQUERADE_OPTION)
IFNAME_MAX = 15

# Docker's default local address pools, in order (libnetwork ipamutils: 172.17-31.0.0/16 each
# a /16, then 192.168.0.0/16 in /20s): (base, size), what daemon.json's
# "default-address-pools" replaces. The egress bridge takes its subnet from them too
# (``network.egress``): 172.18.0.0/16 with these, after the default bridge's 172.17.0.0/16.
LOCAL_POOLS: tuple[tuple[str, int], ...] = (
    *((f"172.{octet}.0.0/16", 16) for octet in range(17, 32)),
    ("192.168.0.0/16", 20),
)


@dataclass(frozen=True)
class HostFacts:
    """What the host has that a new local network must respect."""

    links: frozenset[str]  # interface names
    routes: tuple[str, ...]  # destination subnets of its routes, default route excluded
    addresses: tuple[tuple[str, str], ...] = ()  # (interface, "ip/prefix") of its IPv4 addresses

    def addresses_on(self, link: str) -> list[str]:
        return [cidr for name, cidr in self.addresses if name == link]


def bridge_device(net: Network) -> str:
    return net.options.get(BRIDGE_NAME_OPTION) or f"fbr-{net.net_id[:10]}"


def icc(net: Network) -> bool:
    """Whether containers on one bridge network may talk to each other (Docker's default)."""
    return net.options.get(ICC_OPTION, "true") == "true"


def masquerade(net: Network) -> bool:
    return net.options.get(MASQUERADE_OPTION, "true") == "true"


def parent(net: Network) -> str:
    return net.options.get(PARENT_OPTION, "")


def plan_local_network(
    req: NetworkRequest,
    net_id: str,
    created_at: str,
    known: Iterable[Network],
    host: HostFacts,
    *,
    egress: str | None,
    pools: tuple[tuple[str, int], ...] = LOCAL_POOLS,
) -> Network:
    """The record of a new local network; ``known`` holds every network Ferry knows here,
    ``egress`` the egress bridge's subnet (None while it is not chosen yet: the default
    bridge of a fresh host comes first), ``pools`` the (base, size) pools a bridge without
    --subnet takes its subnet from."""
    check_network_name(req.name)
    networks = list(known)
    if req.driver not in (Driver.BRIDGE, Driver.MACVLAN):
        raise InvalidArgument(
            f"unknown network driver {req.driver!r}: use bridge, macvlan or overlay"
        )
    if req.ingress:
        raise InvalidArgument("only an overlay network can be the routing mesh's ingress network")
    if any(n.name == req.name for n in networks):
        raise Conflict(f"network with name {req.name} already exists")
    options = _check_options(req, networks, host)
    taken = [(n.name, n.subnet) for n in networks]
    egress_taken = [(f"the egress bridge {GWBRIDGE}", egress)] if egress else []
    if req.subnet:
        subnet = ipam.parse_subnet(req.subnet)
        ipam.check_no_overlap(subnet, taken)
        if req.driver == Driver.BRIDGE:
            ipam.check_no_overlap(subnet, egress_taken)
            ipam.check_off_host_routes(subnet, host.routes)
    elif req.driver == Driver.MACVLAN:
        raise InvalidArgument(
            "a macvlan network needs --subnet (and usually --gateway): the subnet of the LAN its "
            "parent interface is on, e.g. --subnet 192.168.1.0/24 --gateway 192.168.1.1"
        )
    else:
        used = [c for _, c in [*taken, *egress_taken]]
        subnet = choose_bridge_subnet([*used, *host.routes], pools)
    gateway, ip_range = ipam.gateway_and_range(subnet, req.gateway, req.ip_range)
    return Network(
        net_id=net_id,
        name=req.name,
        driver=Driver(req.driver),
        scope=Scope.LOCAL,
        subnet=str(subnet),
        gateway=gateway,
        ip_range=ip_range,
        attachable=req.attachable,
        internal=req.internal,
        labels=dict(req.labels or {}),
        options=options,
        created_at=created_at,
    )


def choose_bridge_subnet(
    taken: Iterable[str], pools: tuple[tuple[str, int], ...] = LOCAL_POOLS
) -> ipaddress.IPv4Network:
    """The first free ``/size`` of the first pool that has one (Docker's order), overlapping
    nothing in ``taken``. PoolExhausted when every pool is full."""
    used = list(taken)
    for pool, size in pools:
        try:
            return ipaddress.IPv4Network(ipam.choose_subnet(pool, size, used))
        except PoolExhausted:
            continue
    listed = ", ".join(f"{pool} in /{size}s" for pool, size in pools)
    raise PoolExhausted(
        f"no free subnet left in the local address pools ({listed}): give --subnet "
        "explicitly, remove unused networks, or add pools (daemon.json default-address-pools)"
    )


def _check_options(req: NetworkRequest, networks: list[Network], host: HostFacts) -> dict[str, str]:
    options = dict(req.options or {})
    allowed = BRIDGE_OPTIONS if req.driver == Driver.BRIDGE else MACVLAN_OPTIONS
    check_options(req.driver, options, allowed)
    for key in BOOLEAN_OPTIONS:
        if key in options and options[key] not in ("true", "false"):
            raise InvalidArgument(f"option {key} takes true or false, not {options[key]!r}")
    if req.driver == Driver.BRIDGE:
        _check_bridge_name(options.get(BRIDGE_NAME_OPTION, ""), networks, host)
        return options
    return _check_parent(options, networks, host)


def _check_bridge_name(name: str, networks: list[Network], host: HostFacts) -> None:
    if not name:
        return
    if len(name) > IFNAME_MAX or not set(name) <= NAME_CHARS:
        raise InvalidArgument(f"invalid bridge name {name!r}: at most 15 of [a-zA-Z0-9_.-]")
    if name in host.links or any(bridge_device(n) == name for n in networks):
        raise Conflict(f"bridge name {name} is already in use on this host")


def _check_parent(
    options: dict[str, str], networks: list[Network], host: HostFacts
) -> dict[str, str]:
    link = options.get(PARENT_OPTION, "")
    if not link:
        raise InvalidArgument(
            "a macvlan network needs its parent interface: -o parent=IFACE (e.g. -o parent=eth0)"
        )
    if link not in host.links:
        raise NotFound(f"parent interface {link} not found on this host")
    for other in networks:
        if other.driver == Driver.MACVLAN and parent(other) == link:
            raise Conflict(
                f"network {other.name} already uses parent interface {link}: one macvlan "
                "network per parent"
            )
    mode = options.setdefault(MODE_OPTION, "bridge")
    if mode != "bridge":
        raise InvalidArgument(f"macvlan mode {mode!r} is not supported: Ferry uses bridge mode")
    return options
