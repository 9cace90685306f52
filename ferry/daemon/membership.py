"""This node's swarm membership on disk: who it is in which cluster, and where its managers are.

Absent file = not in a swarm. Certificates live beside it (``certs/``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from ferry.daemon.files import read_json, write_json
from ferry.manager.ca import CertPaths
from ferry.model.codec import decode_plain, to_plain
from ferry.model.node import Role


@dataclass(frozen=True)
class Membership:
    node_id: str
    cluster_id: str
    role: Role
    addr: str
    listen_addr: str
    managers: list[str] = field(default_factory=list)


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
