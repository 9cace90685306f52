"""Ferry's own ports on the underlay: the one definition every other module uses.

The table of DESIGN.md ("Ports (on the underlay)"), plus etcd's client port and the port of
encrypted VXLAN. Two rules follow from it:

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
VXLAN_PORT = 4789  # udp: VXLAN (RFC 7348's port)
ENCRYPTED_VXLAN_PORT = 4790  # udp: VXLAN of encrypted networks, only ever inside WireGuard
WIREGUARD_PORT = 51820  # udp: WireGuard (wg-quick's default)


@dataclass(frozen=True, order=True)
class ReservedPort:
    protocol: str  # "tcp" | "udp"
    port: int
    use: str  # what Ferry uses it for, as the refusal names it


RESERVED_PORTS: tuple[ReservedPort, ...] = (
    ReservedPort("tcp", CLUSTER_PORT, "cluster API"),
    ReservedPort("tcp", ETCD_CLIENT_PORT, "etcd clients"),
    ReservedPort("tcp", ETCD_PEER_PORT, "etcd peers"),
    ReservedPort("udp", VXLAN_PORT, "VXLAN"),
    ReservedPort("udp", ENCRYPTED_VXLAN_PORT, "encrypted VXLAN"),
    ReservedPort("udp", WIREGUARD_PORT, "WireGuard"),
)

VXLAN_PORTS = (VXLAN_PORT, ENCRYPTED_VXLAN_PORT)


def reserved(protocol: str, port: int) -> ReservedPort | None:
    """The reservation of ``port``/``protocol``, or None when Ferry does not use it."""
    return next((r for r in RESERVED_PORTS if (r.protocol, r.port) == (protocol, port)), None)


def check_publishable(protocol: str, port: int) -> None:
    """Refuse to publish one of Ferry's own ports.

    Raises InvalidArgument: "port 51820/udp is reserved by Ferry (WireGuard): publish another".
    """
    taken = reserved(protocol, port)
    if taken is not None:
        raise InvalidArgument(
            f"port {port}/{protocol} is reserved by Ferry ({taken.use}): publish another"
        )
