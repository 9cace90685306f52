"""This node's swarm membership on disk: who it is in which cluster, and where its managers are.

Absent file = not in a swarm. Certificates live beside it (``certs/``). It keeps this node's
copy of the one cluster fact its data plane needs before the swarm's state has arrived after
a restart: the swarm's data-path port (the cluster record in the store is the source; the
port never changes, so the copy taken at init or join stays true; a file written before
swarms chose their port decodes to 4789, the port those swarms used).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from ferry.daemon.files import read_json, write_json
from ferry.manager.ca import CertPaths
from ferry.model.codec import decode_plain, to_plain
from ferry.model.node import Role
from ferry.model.ports import DEFAULT_DATA_PATH_PORT


@dataclass(frozen=True)
class Membership:
    node_id: str
    cluster_id: str
    role: Role
    addr: str
    listen_addr: str
    managers: list[str] = field(default_factory=list)
    data_path_port: int = DEFAULT_DATA_PATH_PORT  # the swarm's VXLAN UDP port


class MembershipFile:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "swarm.json"
        self.certs = CertPaths(state_dir / "certs")

    def load(self) -> Membership | None:
        raw = read_json(self.path)
        return None if raw is None else decode_plain(Membership, raw)

    def save(self, membership: Membership) -> None:
        write_json(self.path, to_plain(membership))

    def update_managers(self, managers: list[str]) -> None:
        current = self.load()
        if current is not None and sorted(current.managers) != sorted(managers):
            self.save(replace(current, managers=sorted(managers)))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.certs.directory, ignore_errors=True)
