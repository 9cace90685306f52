"""A lab's topology as plain data: names, addresses and paths, resolved from a few options.

Host ``hI`` sits at ``.(10+I)`` of the underlay subnet, client ``cI`` at ``.(100+I)`` and the
lab's registry (node ``registry``, :mod:`ferry.lab.registry`) at ``.250``, port 5000. Every
kernel object a lab owns carries the lab's name as prefix, which is what lets ``lab down`` find
and remove them, also after a crash, without touching anything else.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from ferry.errors import InvalidArgument

LAB_ROOT = Path("/run/ferry/lab")
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
MAX_HOSTS = 89  # .11 … .99
MAX_CLIENTS = 99  # .101 … .199
REGISTRY_NODE = "registry"
REGISTRY_HOST_INDEX = 250
REGISTRY_PORT = 5000  # the distribution server's usual port


@dataclass(frozen=True)
class LabNode:
    name: str
    addr: str
    prefixlen: int
    netns: str
    runs_ferryd: bool
    lab_dir: Path

    @property
    def run_dir(self) -> Path:
        return self.lab_dir / self.name

    @property
    def state_dir(self) -> Path:
        return self.lab_dir / self.name / "state"

    @property
    def socket(self) -> Path:
        return self.run_dir / "ferryd.sock"

    @property
    def docker_config(self) -> Path:
        """The docker CLI's client config of this node (``DOCKER_CONFIG``: ``docker login``'s
        credentials, contexts): its own, as each machine has, under the lab's directory so
        ``ferry lab down`` removes it; never the real host's ``~/.docker``."""
        return self.run_dir / "docker"

    @property
    def netns_prefix(self) -> str:
        """Prefix for the namespaces this host's ferryd creates (containers, sandboxes)."""
        return f"{self.netns}-"


@dataclass(frozen=True)
class LabTopology:
    name: str
    subnet: str
    nodes: tuple[LabNode, ...]

    @property
    def underlay_netns(self) -> str:
        return f"{self.name}-ul"

    @property
    def lab_dir(self) -> Path:
        return LAB_ROOT / self.name

    @property
    def hosts(self) -> tuple[LabNode, ...]:
        return tuple(n for n in self.nodes if n.runs_ferryd)

    @property
    def registry(self) -> LabNode:
        """The node the lab's registry runs on."""
        return self.node(REGISTRY_NODE)

    @property
    def registry_address(self) -> str:
        """``host:port`` of the lab's registry, as daemon.json and image names spell it."""
        return f"{self.registry.addr}:{REGISTRY_PORT}"

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise InvalidArgument(f"lab {self.name} has no host {name!r} (it has: {known})")


def validate_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid lab name {name!r}: use 1-8 lowercase letters and digits, "
            "starting with a letter"
        )


def plan_topology(name: str, hosts: int, clients: int, subnet: str) -> LabTopology:
    validate_name(name)
    if not 1 <= hosts <= MAX_HOSTS:
        raise InvalidArgument(f"--hosts must be between 1 and {MAX_HOSTS}")
    if not 0 <= clients <= MAX_CLIENTS:
        raise InvalidArgument(f"--clients must be between 0 and {MAX_CLIENTS}")
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid --subnet {subnet!r}: {exc}") from exc
    if net.version != 4 or net.prefixlen > 24:
        raise InvalidArgument(f"--subnet must be an IPv4 network of /24 or larger, not {subnet}")
    lab_dir = LAB_ROOT / name
    nodes = [
        LabNode(f"h{i}", str(net[10 + i]), net.prefixlen, f"{name}-h{i}", True, lab_dir)
        for i in range(1, hosts + 1)
    ]
    nodes += [
        LabNode(f"c{i}", str(net[100 + i]), net.prefixlen, f"{name}-c{i}", False, lab_dir)
        for i in range(1, clients + 1)
    ]
    nodes.append(
        LabNode(
            REGISTRY_NODE,
            str(net[REGISTRY_HOST_INDEX]),
            net.prefixlen,
            f"{name}-{REGISTRY_NODE}",
            False,
            lab_dir,
        )
    )
    return LabTopology(name, str(net), tuple(nodes))
