"""Address management as plain data: subnets from a pool, addresses in a subnet, MACs from IPs.

The rules (Docker's): a subnet's first usable address is its gateway unless told otherwise;
endpoints get the lowest free address of the subnet (or of ``--ip-range`` inside it), never
the network or broadcast address or the gateway; a MAC is ``02:42`` followed by the IPv4
address, so peers can be programmed from the address alone. Reservation itself is atomic in
the store (a create-if-absent on the address's key); this module only decides what to ask for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from ferry.errors import InvalidArgument, PoolExhausted, SubnetOverlap

IPv4Net = ipaddress.IPv4Network


# Blocks no container network can use (RFC 6890): the kernel routes them specially (loopback
# stays on lo, multicast and broadcast are not unicast, 0/8 means "this host", link-local is
# never forwarded). A network on one would capture or break the host's own traffic.
SPECIAL_BLOCKS = (
    ("0.0.0.0/8", "'this network' (RFC 1122)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved and broadcast"),
)


def parse_subnet(text: str, what: str = "subnet") -> IPv4Net:
    """A subnet (or pool, or ip-range) as written: IPv4, no host bits, 2 addresses at least,
    none of the special-purpose blocks."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what} {text!r}: {exc}") from exc
    if not isinstance(net, IPv4Net):
        raise InvalidArgument(f"invalid {what} {text!r}: only IPv4 is supported")
    if net.prefixlen > 30:
        raise InvalidArgument(f"invalid {what} {text}: it must hold at least 2 addresses (/30)")
    for block, kind in SPECIAL_BLOCKS:
        if net.overlaps(ipaddress.IPv4Network(block)):
            raise InvalidArgument(
                f"invalid {what} {text}: it overlaps {block}, {kind} addresses no network can "
                "use; choose a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)"
            )
    return net


def overlapping(subnet: IPv4Net, taken: Iterable[tuple[str, str]]) -> str | None:
    """The name of a network whose subnet overlaps ``subnet``, if any (taken: (name, cidr))."""
    for name, cidr in taken:
        if subnet.overlaps(ipaddress.ip_network(cidr)):
            return name
    return None


def check_pool(pool: str, size: int) -> IPv4Net:
    """An address pool and the size of the subnets cut from it (``swarm init``)."""
    pool_net = parse_subnet(pool, "address pool")
    if not pool_net.prefixlen <= size <= 30:
        raise InvalidArgument(
            f"subnet size /{size} does not fit the pool {pool}: use /{pool_net.prefixlen} to /30"
        )
    return pool_net


def choose_subnet(pool: str, size: int, taken: Iterable[str]) -> str:
    """The first ``/size`` of ``pool`` that overlaps nothing in ``taken``."""
    pool_net = check_pool(pool, size)
    used = [ipaddress.ip_network(c) for c in taken]
    for candidate in pool_net.subnets(new_prefix=size):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise PoolExhausted(
        f"the address pool {pool} is exhausted: no free /{size} left; remove unused networks "
        "or give --subnet explicitly"
    )


def default_gateway(subnet: IPv4Net) -> str:
    return str(subnet.network_address + 1)


def check_gateway(subnet: IPv4Net, gateway: str) -> str:
    try:
        addr = ipaddress.IPv4Address(gateway)
    except ValueError as exc:
        raise InvalidArgument(f"invalid gateway {gateway!r}") from exc
    if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"gateway {gateway} is not a usable address of subnet {subnet}")
    return str(addr)


def check_ip_range(subnet: IPv4Net, ip_range: str) -> str:
    rng = parse_subnet(ip_range, "ip-range")
    if not rng.subnet_of(subnet):
        raise InvalidArgument(f"ip-range {ip_range} is not inside subnet {subnet}")
    return str(rng)


def gateway_and_range(subnet: IPv4Net, gateway: str, ip_range: str) -> tuple[str, str]:
    """A network's gateway (the one given, checked, or the subnet's first address) and its
    checked --ip-range ("" for the whole subnet)."""
    chosen = check_gateway(subnet, gateway) if gateway else default_gateway(subnet)
    return chosen, check_ip_range(subnet, ip_range) if ip_range else ""


def candidates(subnet: str, gateway: str, ip_range: str = "") -> Iterator[str]:
    """Assignable addresses in allocation order (lowest first)."""
    net = ipaddress.IPv4Network(subnet)
    scope = ipaddress.IPv4Network(ip_range) if ip_range else net
    excluded = {net.network_address, net.broadcast_address, ipaddress.IPv4Address(gateway)}
    for addr in scope:
        if addr not in excluded:
            yield str(addr)


def next_free(subnet: str, gateway: str, ip_range: str, taken: set[str]) -> str:
    for addr in candidates(subnet, gateway, ip_range):
        if addr not in taken:
            return addr
    raise PoolExhausted(f"no free address left in {ip_range or subnet}")


def check_static_ip(subnet: str, gateway: str, ip: str, taken: set[str]) -> str:
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError as exc:
        raise InvalidArgument(f"invalid IP address {ip!r}") from exc
    net = ipaddress.IPv4Network(subnet)
    if addr not in net:
        raise InvalidArgument(f"address {ip} is outside the network's subnet {subnet}")
    if addr in (net.network_address, net.broadcast_address) or str(addr) == gateway:
        raise InvalidArgument(
            f"address {ip} is reserved in {subnet} (network, broadcast or gateway)"
        )
    if str(addr) in taken:
        raise InvalidArgument(f"address {ip} is already in use on this network")
    return str(addr)


def assign(subnet: str, gateway: str, ip_range: str, requested: str, taken: set[str]) -> str:
    """The address asked for (checked) or the lowest free one; added to ``taken``."""
    if requested:
        ip = check_static_ip(subnet, gateway, requested, taken)
    else:
        ip = next_free(subnet, gateway, ip_range, taken)
    taken.add(ip)
    return ip


def mac_for(ip: str) -> str:
    raw = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)


def check_no_overlap(subnet: IPv4Net, taken: Iterable[tuple[str, str]]) -> None:
    clash = overlapping(subnet, taken)
    if clash is not None:
        raise SubnetOverlap(f"subnet {subnet} overlaps network {clash!r}; choose another --subnet")


def check_off_host_routes(subnet: IPv4Net, routes: Iterable[str]) -> None:
    """A local network's subnet may not overlap a route the host has (its LAN, the underlay):
    the new bridge's connected route would compete with it and capture part of the host's own
    traffic. Docker refuses the same: "networks have overlapping IPv4" (libnetwork's
    CheckRouteOverlaps on the bridge driver). SubnetOverlap (400)."""
    for route in routes:
        if subnet.overlaps(ipaddress.ip_network(route, strict=False)):
            raise SubnetOverlap(
                f"subnet {subnet} overlaps the host's route to {route}: networks have "
                "overlapping IPv4; choose another --subnet"
            )


def check_off_node_addresses(subnet: IPv4Net, nodes: Iterable[tuple[str, str]]) -> None:
    """An overlay's subnet may not hold a swarm node's advertise address (nodes: (hostname,
    address)): its tasks would route that node, and the underlay around it, into the overlay
    instead of to the node. SubnetOverlap (400)."""
    for hostname, addr in nodes:
        if addr and ipaddress.IPv4Address(addr) in subnet:
            raise SubnetOverlap(
                f"subnet {subnet} holds the address {addr} of swarm node {hostname} (the "
                "underlay): networks have overlapping IPv4; choose another --subnet"
            )


def next_vni(start: int, taken: Iterable[int]) -> int:
    used = set(taken)
    vni = start
    while vni in used:
        vni += 1
    if vni >= 1 << 24:
        raise PoolExhausted("no free VXLAN network identifier left")
    return vni
