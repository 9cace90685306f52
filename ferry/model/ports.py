"""Ferry's own ports on the underlay: the one definition every other module uses.

The table of DESIGN.md ("Ports (on the underlay)"), plus etcd's client port and the port of
encrypted VXLAN. The VXLAN pair is the swarm's: ``swarm init --data-path-port N`` (Docker's
flag; 4789 by default) picks the data-path port once, for the swarm's whole life, and
encrypted networks use N + 1 (``encrypted_port``). Outside a swarm a host reserves its own
default (daemon.json ``data-path-port``, else 4789). Two rules follow from it:

- No container may reach any of them on any node (``network.guard`` renders the host rules).
- None of them may be published (``run -p``, ``service create|update --publish``, in either
  mode): a published port is a DNAT of ``fib daddr type local`` (and of the host's own output),
  so publishing 51820/udp steals every node's WireGuard packets, 2377/tcp its cluster API,
  2379/tcp ferryd's own connection to etcd on 127.0.0.1.

Only the protocol a port is used with is reserved: the DNAT rules match the protocol, so
publishing 51820/tcp or 2377/udp takes nothing from Ferry and stays allowed. The embedded DNS
listens inside each container's own namespace, never on a host port: it reserves nothing here.

Be aware: ``swarm init --listen-addr`` may move the cluster API to another port; that port is
then refused as in use (a listener on the node), not as reserved.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.errors import InvalidArgument

CLUSTER_PORT = 2377  # tcp: cluster API (mutual TLS)
ETCD_CLIENT_PORT = 2379  # tcp: etcd clients (ferryd, on 127.0.0.1 only)
ETCD_PEER_PORT = 2380  # tcp: etcd peers (managers)
DEFAULT_DATA_PATH_PORT = 4789  # udp: VXLAN (RFC 7348's port), unless the swarm chose another
WIREGUARD_PORT = 51820  # udp: WireGuard (wg-quick's default)
# the data-path ports Docker takes (``swarm init --data-path-port``): IANA's registered ports
DATA_PATH_PORT_RANGE = (1024, 49151)


@dataclass(frozen=True, order=True)
class ReservedPort:
    protocol: str  # "tcp" | "udp"
    port: int
    use: str  # what Ferry uses it for, as the refusal names it


# the ports every Ferry node uses whatever its swarm (the VXLAN pair is the swarm's choice)
FIXED_PORTS: tuple[ReservedPort, ...] = (
    ReservedPort("tcp", CLUSTER_PORT, "cluster API"),
    ReservedPort("tcp", ETCD_CLIENT_PORT, "etcd clients"),
    ReservedPort("tcp", ETCD_PEER_PORT, "etcd peers"),
    ReservedPort("udp", WIREGUARD_PORT, "WireGuard"),
)


def encrypted_port(data_path_port: int) -> int:
    """The UDP port of encrypted networks' VXLAN: the data-path port + 1 (4790 by default).

    Ferry's rule (Docker has no such port: its encrypted overlays use IPsec on the same
    VXLAN port): the two must differ, because a routing rule sends every UDP datagram for the
    encrypted port into WireGuard and a firewall rule drops it when it did not come out of
    the tunnel. It only ever travels inside WireGuard, never on the wire in clear.
    """
    return data_path_port + 1


def vxlan_ports(data_path_port: int) -> tuple[int, int]:
    """(the data-path port, its encrypted companion): the UDP ports VXLAN uses on a host."""
    return data_path_port, encrypted_port(data_path_port)


def reserved_ports(data_path_port: int | None) -> tuple[ReservedPort, ...]:
    """Ferry's own ports on a host whose swarm uses ``data_path_port`` (None: only the fixed
    ones, where the swarm's choice is not known yet)."""
    if data_path_port is None:
        return FIXED_PORTS
    plain, encrypted = vxlan_ports(data_path_port)
    vxlan = (ReservedPort("udp", plain, "VXLAN"), ReservedPort("udp", encrypted, "encrypted VXLAN"))
    return FIXED_PORTS + vxlan


def reserved(protocol: str, port: int, data_path_port: int | None) -> ReservedPort | None:
    """The reservation of ``port``/``protocol``, or None when Ferry does not use it."""
    return next(
        (r for r in reserved_ports(data_path_port) if (r.protocol, r.port) == (protocol, port)),
        None,
    )


def check_publishable(protocol: str, port: int, data_path_port: int | None) -> None:
    """Refuse to publish one of Ferry's own ports, the swarm's VXLAN pair among them.

    ``data_path_port``: the swarm's (or this host's, outside a swarm); None where it is not
    known (a request checked before it reaches a manager, which checks it again with it).
    Raises InvalidArgument: "port 51820/udp is reserved by Ferry (WireGuard): publish another".
    """
    taken = reserved(protocol, port, data_path_port)
    if taken is not None:
        raise InvalidArgument(
            f"port {port}/{protocol} is reserved by Ferry ({taken.use}): publish another"
        )


def check_data_path_port(port: int) -> int:
    """The data-path port a swarm is to use: 0 is the default (4789), as Docker reads it.

    Raises InvalidArgument outside 1024-49151 in moby's words (libnetwork's
    ``ConfigVXLANUDPPort``: "VXLAN UDP port number is not in valid range (1024-49151): 80"),
    and for a port whose number, or its encrypted companion's (``encrypted_port``), is one
    Ferry uses itself, whatever the protocol: one number never serves two of Ferry's uses,
    so a firewall rule written for one cannot open the other.
    """
    if port == 0:
        return DEFAULT_DATA_PATH_PORT
    low, high = DATA_PATH_PORT_RANGE
    if isinstance(port, bool) or not low <= port <= high:
        raise InvalidArgument(f"VXLAN UDP port number is not in valid range ({low}-{high}): {port}")
    companion = encrypted_port(port)
    for fixed in FIXED_PORTS:
        if fixed.port == port:
            raise InvalidArgument(
                f"data path port {port} clashes with port {fixed.port}/{fixed.protocol}, "
                f"which Ferry uses for its {fixed.use}: choose another data path port"
            )
        if fixed.port == companion:
            raise InvalidArgument(
                f"data path port {port} needs {companion}/udp for encrypted overlays (the data "
                f"path port + 1), which clashes with port {fixed.port}/{fixed.protocol} of "
                f"Ferry's {fixed.use}: choose another data path port"
            )
    return port
