"""ferryd's settings: where its files live, how it names what it creates, and the settings
of its config file: Docker's daemon.json keys Ferry honours, read from ``ferryd --config PATH``
or, by default, ``/etc/ferry/daemon.json`` when it exists (dockerd reads
``/etc/docker/daemon.json`` so).

Be aware: the file is read once, at start; a change takes effect at ferryd's next start
(dockerd reloads a few keys on SIGHUP; ferryd reloads none)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.errors import FerryError, InvalidArgument
from ferry.model.ports import DEFAULT_DATA_PATH_PORT, check_data_path_port
from ferry.network.ipam import check_pool
from ferry.network.local import LOCAL_POOLS
from ferry.runtime.skopeo import check_insecure, check_mirror

DEFAULT_CONFIG_FILE = Path("/etc/ferry/daemon.json")
DEFAULT_MTU_BYTES = 1500  # dockerd's --mtu default (its default bridge's MTU)
MTU_RANGE = (68, 65535)  # IPv4's smallest (RFC 791) to the largest a link takes

# daemon.json keys Ferry honours, and the DaemonConfig field each sets; any other key is
# refused by name (nothing silently ignored), as dockerd refuses keys it does not know
FILE_KEYS = {
    "data-root": "state_dir",
    "log-level": "log_level",
    "mtu": "mtu_bytes",
    "default-address-pools": "address_pools",
    "registry-mirrors": "registry_mirrors",
    "insecure-registries": "insecure_registries",
    "hosts": "hosts",
    "data-path-port": "data_path_port",
}
# Docker's keys Ferry refuses with a reason of their own (a plain "unknown" would mislead)
REFUSED_KEYS: dict[str, str] = {}
# dockerd's levels (logrus's names, "warning" among them), which Python's logging also knows
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal")


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path = Path("/var/lib/ferry")
    run_dir: Path = Path("/run/ferry")
    hostname: str = ""
    netns_prefix: str = "ferry-"
    etcd_binary: str = "etcd"
    log_level: str = "info"  # daemon.json "log-level"
    registry_mirrors: tuple[str, ...] = ()  # daemon.json "registry-mirrors"
    insecure_registries: tuple[str, ...] = ()  # daemon.json "insecure-registries"
    mtu_bytes: int = DEFAULT_MTU_BYTES  # daemon.json "mtu": the default bridge network's MTU
    # daemon.json "default-address-pools": (base, size) the bridge networks' subnets come from
    address_pools: tuple[tuple[str, int], ...] = LOCAL_POOLS
    hosts: tuple[str, ...] = ()  # daemon.json "hosts": unix://PATH sockets; () = socket_path
    # daemon.json "data-path-port": this host's VXLAN port for a swarm it inits without
    # --data-path-port, and the only one it joins (0: not set, 4789 and any swarm's port)
    data_path_port: int = 0

    @property
    def node_hostname(self) -> str:
        return self.hostname or socket.gethostname()

    @property
    def default_data_path_port(self) -> int:
        """The data-path port of a swarm this host inits without ``--data-path-port``."""
        return self.data_path_port or DEFAULT_DATA_PATH_PORT

    @property
    def socket_path(self) -> Path:
        """The first socket the local API listens on (``<run dir>/ferryd.sock`` unless
        ``hosts`` names others)."""
        return self.socket_paths[0]

    @property
    def socket_paths(self) -> tuple[Path, ...]:
        """Every socket the local API listens on, from ``hosts`` (``unix://PATH``)."""
        if not self.hosts:
            return (self.run_dir / "ferryd.sock",)
        return tuple(Path(host.removeprefix("unix://")) for host in self.hosts)

    @property
    def pid_path(self) -> Path:
        return self.run_dir / "ferryd.pid"

    @property
    def certs_dir(self) -> Path:
        return self.state_dir / "certs"

    @property
    def etcd_dir(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def containers_dir(self) -> Path:
        return self.state_dir / "containers"

    @property
    def images_dir(self) -> Path:
        return self.state_dir / "images"

    @property
    def registry_dir(self) -> Path:
        """skopeo's configuration and transfers (beside the images: same filesystem, so a
        pulled blob is renamed into the store, not copied)."""
        return self.images_dir / "registry"

    @property
    def registry_auth_path(self) -> Path:
        """Credentials of ``login`` (mode 0600; containers-auth.json(5))."""
        return self.state_dir / "registry-auth.json"

    @property
    def volumes_dir(self) -> Path:
        """Named volumes of the local driver (Docker's <root>/volumes/<name>/_data)."""
        return self.state_dir / "volumes"

    @property
    def runc_root(self) -> Path:
        """runc's state of this ferryd's containers (on a tmpfs: gone with a reboot, as are
        the containers)."""
        return self.run_dir / "runc"

    @property
    def monitor_socket_dir(self) -> Path:
        """Short links to the containers' attach sockets, and exec console sockets."""
        return self.run_dir / "sock"

    @property
    def cgroup_parent(self) -> str:
        """The cgroup below which runc puts this ferryd's containers (its name carries the
        namespace prefix, so ``lab down`` finds a lab host's)."""
        return f"ferry/{self.netns_prefix.rstrip('-') or 'ferry'}"

    @property
    def egress_path(self) -> Path:
        """The egress bridge's subnet, kept from the first start on (``network.egress``)."""
        return self.state_dir / "egress.json"

    @property
    def networks_dir(self) -> Path:
        """Records of this host's local (bridge, macvlan) networks."""
        return self.state_dir / "networks"


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a daemon.json-style file as ``DaemonConfig`` fields (only the keys the
    file has). Raises ``InvalidArgument`` naming the file and an unknown key, or the key of a
    wrong value (dockerd refuses both: "the following directives don't match any
    configuration option")."""
    try:
        doc: Any = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidArgument(f"cannot read the config file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InvalidArgument(f"the config file {path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"the config file {path} is not a JSON object")
    for key, reason in REFUSED_KEYS.items():
        if key in doc:
            raise InvalidArgument(f"{key} in the config file {path} is refused: {reason}")
    unknown = sorted(key for key in doc if key not in FILE_KEYS)
    if unknown:
        raise InvalidArgument(
            f"unable to configure ferryd with the file {path}: the following directives "
            f"don't match any configuration option: {', '.join(unknown)} "
            f"(Ferry takes {', '.join(FILE_KEYS)})"
        )
    out: dict[str, Any] = {}
    for key, value in doc.items():
        try:
            out[FILE_KEYS[key]] = _CHECKS[key](value)
        except FerryError as exc:
            raise InvalidArgument(f"invalid {key} in the config file {path}: {exc}") from exc
    return out


def _data_root(value: Any) -> Path:
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidArgument(f"{value!r} is not an absolute path")
    return Path(value)


def _log_level(value: Any) -> str:
    if value not in LOG_LEVELS:
        raise InvalidArgument(f"{value!r} is not a log level: use {', '.join(LOG_LEVELS)}")
    return str(value)


def _mtu(value: Any) -> int:
    low, high = MTU_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{value!r} is not an MTU: use a number from {low} to {high}")
    return value


def _pools(value: Any) -> tuple[tuple[str, int], ...]:
    """Docker's shape: ``[{"base": "10.10.0.0/16", "size": 24}, …]``; ``[]``: the defaults."""
    if not isinstance(value, list):
        raise InvalidArgument('use a list of {"base": CIDR, "size": N}')
    pools: list[tuple[str, int]] = []
    for pool in value:
        if not isinstance(pool, dict) or set(pool) != {"base", "size"}:
            raise InvalidArgument(f'{pool!r} is not {{"base": CIDR, "size": N}}')
        base, size = pool["base"], pool["size"]
        if not isinstance(base, str) or isinstance(size, bool) or not isinstance(size, int):
            raise InvalidArgument(f"{pool!r}: base is a CIDR string, size a number")
        check_pool(base, size)
        pools.append((base, size))
    return tuple(pools) or LOCAL_POOLS


def _strings(check: Callable[[str], object]) -> Callable[[Any], tuple[str, ...]]:
    def strings(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument("use a list of strings")
        for entry in value:
            check(entry)
        return tuple(value)

    return strings


def _host(host: str) -> str:
    """A socket of ``hosts``: ``unix://`` and an absolute path only."""
    if host.startswith("tcp://"):
        raise InvalidArgument(
            f"{host} is refused: ferryd's API has no TLS client authentication, so a TCP "
            "socket would give root on this host to whoever reaches it; use unix://PATH"
        )
    if not host.startswith("unix:///"):
        raise InvalidArgument(f"{host!r} is not unix:///PATH (ferryd listens on unix sockets)")
    return host


def _data_path_port(value: Any) -> int:
    """A port ``swarm init --data-path-port`` would take; 0 is Docker's "not set"."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{value!r} is not a port number")
    return 0 if value == 0 else check_data_path_port(value)


def _hosts(value: Any) -> tuple[str, ...]:
    hosts = _strings(_host)(value)
    if len(set(hosts)) != len(hosts):
        raise InvalidArgument("a socket is listed twice")
    return hosts


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "data-root": _data_root,
    "log-level": _log_level,
    "mtu": _mtu,
    "default-address-pools": _pools,
    "registry-mirrors": _strings(check_mirror),
    "insecure-registries": _strings(check_insecure),
    "hosts": _hosts,
    "data-path-port": _data_path_port,
}
