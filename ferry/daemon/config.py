"""ferryd's settings: where its files live and how it names what it creates."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path = Path("/var/lib/ferry")
    run_dir: Path = Path("/run/ferry")
    hostname: str = ""
    netns_prefix: str = "ferry-"
    etcd_binary: str = "etcd"
    log_level: str = "info"

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
