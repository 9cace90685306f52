"""Which remote endpoints a host's overlay sandbox must know, and how to get there from here.

For every endpoint on another host, a sandbox holds two static entries: an FDB entry (its MAC
→ that host's VTEP address) and a permanent neighbour entry (its IP → its MAC). ``plan_peers``
compares the full desired set with what the kernel holds and returns only the difference, so
applying it is idempotent and a resync after a restart adds what is missing and removes what is
stale — nothing else is touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ferry.model.network import Endpoint


@dataclass(frozen=True, order=True)
class Peer:
    ip: str
    mac: str
    vtep: str


@dataclass(frozen=True)
class PeerPlan:
    fdb_add: tuple[tuple[str, str], ...] = ()  # (mac, vtep), added or moved
    fdb_del: tuple[tuple[str, str], ...] = ()  # (mac, vtep)
    neigh_add: tuple[tuple[str, str], ...] = ()  # (ip, mac), added or changed
    neigh_del: tuple[str, ...] = ()  # ip

    @property
    def empty(self) -> bool:
        return not (self.fdb_add or self.fdb_del or self.neigh_add or self.neigh_del)

    def __len__(self) -> int:
        return len(self.fdb_add) + len(self.fdb_del) + len(self.neigh_add) + len(self.neigh_del)


def desired_peers(
    endpoints: Iterable[Endpoint], local_node: str, vteps: dict[str, str]
) -> frozenset[Peer]:
    """Peers of a network as seen from ``local_node``: endpoints elsewhere whose host is known."""
    peers = set()
    for ep in endpoints:
        if ep.node_id == local_node:
            continue
        vtep = vteps.get(ep.node_id)
        if vtep:
            peers.add(Peer(ep.ip, ep.mac, vtep))
    return frozenset(peers)


def plan_peers(desired: frozenset[Peer], fdb: dict[str, str], neigh: dict[str, str]) -> PeerPlan:
    """The changes that turn (fdb: mac → vtep, neigh: ip → mac) into exactly ``desired``."""
    want_fdb = {p.mac: p.vtep for p in desired}
    want_neigh = {p.ip: p.mac for p in desired}
    return PeerPlan(
        fdb_add=tuple(sorted((m, v) for m, v in want_fdb.items() if fdb.get(m) != v)),
        fdb_del=tuple(sorted((m, v) for m, v in fdb.items() if m not in want_fdb)),
        neigh_add=tuple(sorted((i, m) for i, m in want_neigh.items() if neigh.get(i) != m)),
        neigh_del=tuple(sorted(i for i in neigh if i not in want_neigh)),
    )


def applied(
    plan: PeerPlan, fdb: dict[str, str], neigh: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """What the kernel holds after ``plan`` succeeded (kept as a cache to avoid re-dumping)."""
    new_fdb = dict(fdb)
    new_neigh = dict(neigh)
    for mac, _vtep in plan.fdb_del:
        new_fdb.pop(mac, None)
    new_fdb.update(dict(plan.fdb_add))
    for ip in plan.neigh_del:
        new_neigh.pop(ip, None)
    new_neigh.update(dict(plan.neigh_add))
    return new_fdb, new_neigh
