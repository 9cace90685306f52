"""ferryd's settings: where its files live, how it names what it creates, and the settings
of its config file (``ferryd --config PATH``, Docker's daemon.json keys Ferry honours)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.errors import InvalidArgument

# daemon.json keys Ferry honours; any other key is refused by name (nothing silently ignored)
FILE_KEYS = ("registry-mirrors", "insecure-registries")


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path = Path("/var/lib/ferry")
    run_dir: Path = Path("/run/ferry")
    hostname: str = ""
    netns_prefix: str = "ferry-"
    etcd_binary: str = "etcd"
    log_level: str = "info"
    registry_mirrors: tuple[str, ...] = ()  # daemon.json "registry-mirrors"
    insecure_registries: tuple[str, ...] = ()  # daemon.json "insecure-registries"

    @property
    def node_hostname(self) -> str:
        return self.hostname or socket.gethostname()

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "ferryd.sock"

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
    def networks_dir(self) -> Path:
        """Records of this host's local (bridge, macvlan) networks."""
        return self.state_dir / "networks"


def read_config_file(path: Path) -> dict[str, tuple[str, ...]]:
    """The settings of a daemon.json-style file as ``DaemonConfig`` fields. Raises
    ``InvalidArgument`` naming an unknown key or a wrong value (Docker refuses those too)."""
    from ferry.runtime.skopeo import check_insecure, check_mirror

    try:
        doc: Any = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidArgument(f"cannot read the config file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InvalidArgument(f"the config file {path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"the config file {path} is not a JSON object")
    for key in doc:
        if key not in FILE_KEYS:
            raise InvalidArgument(
                f"the config file {path} has the key {key!r}, which Ferry does not honour: "
                f"use {', '.join(FILE_KEYS)}"
            )
    out: dict[str, tuple[str, ...]] = {}
    for key, field, check in (
        ("registry-mirrors", "registry_mirrors", check_mirror),
        ("insecure-registries", "insecure_registries", check_insecure),
    ):
        values = doc.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidArgument(f"{key} in {path} must be a list of strings")
        for value in values:
            check(value)
        out[field] = tuple(values)
    return out
