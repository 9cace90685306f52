"""Networks and their endpoints."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from ferry.errors import InvalidArgument


class Driver(StrEnum):
    OVERLAY = "overlay"
    BRIDGE = "bridge"
    MACVLAN = "macvlan"
    NULL = "null"


class Scope(StrEnum):
    SWARM = "swarm"
    LOCAL = "local"


MTU_OPTIONS = ("mtu", "com.docker.network.driver.mtu")
ENCRYPTED_OPTION = "encrypted"

# The per-host egress bridge (Docker's docker_gwbridge): containers on overlays reach the
# outside through it; the ingress sandbox sits on it. Its subnet is this host's (EgressSubnet).
GWBRIDGE = "ferry_gwbridge"

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def check_network_name(name: str) -> None:
    if not name or not set(name) <= NAME_CHARS or name[0] in ".-":
        raise InvalidArgument(
            f"invalid network name {name!r}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )


def check_options(driver: str, options: dict[str, str], allowed: tuple[str, ...]) -> None:
    """Options a driver does not know are refused, not ignored; an MTU must be a number."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidArgument(
            f"unknown {driver} option(s) {', '.join(unknown)}: this driver takes "
            f"{', '.join(allowed)}"
        )
    for key in MTU_OPTIONS:
        if key in options and not (options[key].isdigit() and 68 <= int(options[key]) <= 65535):
            raise InvalidArgument(f"invalid mtu {options[key]!r}: use a number from 68 to 65535")


@dataclass(frozen=True)
class NetworkRequest:
    """``network create`` as asked, before any check: for the managers (overlay) or for this
    host (bridge, macvlan)."""

    name: str
    driver: str = "overlay"
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    attachable: bool = False
    internal: bool = False
    ingress: bool = False
    labels: dict[str, str] | None = None
    options: dict[str, str] | None = None


@dataclass(frozen=True)
class Network:
    net_id: str
    name: str
    driver: Driver
    scope: Scope
    subnet: str
    gateway: str
    ip_range: str = ""
    vni: int = 0
    attachable: bool = False
    internal: bool = False
    ingress: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created_at: str = ""

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def encrypted(self) -> bool:
        """``--opt encrypted``: VXLAN between hosts inside WireGuard (overlays only)."""
        return ENCRYPTED_OPTION in self.options

    @property
    def mtu(self) -> int:
        """The MTU asked for with ``--opt mtu=N`` (0: derive it from the underlay)."""
        for key in MTU_OPTIONS:
            if key in self.options:
                return int(self.options[key])
        return 0


class EndpointKind(StrEnum):
    CONTAINER = "container"
    TASK = "task"
    VIP = "vip"
    SANDBOX = "sandbox"


@dataclass(frozen=True)
class Endpoint:
    """An address on a network, owned by a container, a task, or a service (its VIP)."""

    ep_id: str
    net_id: str
    node_id: str
    ip: str
    mac: str
    kind: EndpointKind
    owner_id: str
    name: str
    aliases: tuple[str, ...] = ()
    hostname: str = ""
    service: str = ""  # the service a task or VIP endpoint belongs to (its name)


def network_names(network: Network) -> tuple[str, str]:
    """What a network is looked up by: its id and its name."""
    return network.net_id, network.name


@dataclass(frozen=True)
class EgressSubnet:
    """The egress bridge's subnet on this host (e.g. ``172.18.0.0/16``, what Docker's default
    pools give docker_gwbridge): taken from the local address pools once, then kept
    (``network.egress``). Its first address is the bridge's own (the containers' gateway), its
    second the ingress sandbox's, as Docker's docker_gwbridge and ingress-sbox have them."""

    subnet: str

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def sandbox_ip(self) -> str:
        return str(self.network.network_address + 2)
