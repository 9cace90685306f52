"""Typed reads over a Mirror of the cluster store: what the manager and agents ask of it."""

from __future__ import annotations

import time
from collections.abc import Callable

from ferry.manager.store import keys
from ferry.manager.store.schema import LeaderRecord
from ferry.model.cluster import ClusterInfo
from ferry.model.mirror import Mirror
from ferry.model.network import Endpoint, Network
from ferry.model.node import Node, NodeSession, NodeStatus, Role, node_status
from ferry.model.service import Service, Task
from ferry.model.times import epoch


class ClusterView:
    def __init__(self, mirror: Mirror, clock: Callable[[], float] = time.time) -> None:
        self.mirror = mirror
        self.clock = clock  # seconds since the epoch: liveness compares store times with it

    def cluster(self) -> ClusterInfo | None:
        return self.mirror.obj(keys.CLUSTER, ClusterInfo)

    def leader_id(self) -> str | None:
        record = self.mirror.obj(keys.LEADER, LeaderRecord)
        return record.node_id if record else None

    def nodes(self) -> list[Node]:
        return self.mirror.objects(keys.NODES, Node)

    def node(self, node_id: str) -> Node | None:
        return self.mirror.obj(keys.node(node_id), Node)

    def session(self, node_id: str) -> NodeSession | None:
        return self.mirror.obj(keys.session(node_id), NodeSession)

    def leader_since(self) -> float | None:
        """When the current leader took office (seconds since the epoch), None without one."""
        record = self.mirror.obj(keys.LEADER, LeaderRecord)
        return epoch(record.since) if record else None

    def status(self, node_id: str) -> NodeStatus:
        """Ready, Unknown (a new leader's grace) or Down: see ``model.node.node_status``."""
        return node_status(
            self.node(node_id), self.session(node_id), self.leader_since(), self.clock()
        )

    def is_up(self, node_id: str) -> bool:
        return self.status(node_id) == NodeStatus.READY

    def is_down(self, node_id: str) -> bool:
        return self.status(node_id) == NodeStatus.DOWN

    def managers(self) -> list[Node]:
        return [n for n in self.nodes() if n.role == Role.MANAGER]

    def manager_addrs(self) -> list[str]:
        return sorted(n.addr for n in self.managers() if not n.left)

    def networks(self) -> list[Network]:
        return self.mirror.objects(keys.NETWORKS, Network)

    def network(self, net_id: str) -> Network | None:
        return self.mirror.obj(keys.network(net_id), Network)

    def endpoints(self, net_id: str | None = None) -> list[Endpoint]:
        prefix = keys.endpoints_of(net_id) if net_id else keys.ENDPOINTS
        return self.mirror.objects(prefix, Endpoint)

    def live_endpoints(self, net_id: str | None = None, *, own: str = "") -> list[Endpoint]:
        """Endpoints served now: not those of a Down node (its containers are out of every
        host's DNS and forwarding tables until it is back; its tasks are replaced). The node
        ``own`` never counts as Down: a host that asks is there, whatever its view says."""
        down: dict[str, bool] = {own: False}
        out = []
        for endpoint in self.endpoints(net_id):
            node_id = endpoint.node_id
            if node_id not in down:
                down[node_id] = bool(node_id) and self.is_down(node_id)
            if not down[node_id]:
                out.append(endpoint)
        return out

    def services(self) -> list[Service]:
        return self.mirror.objects(keys.SERVICES, Service)

    def service(self, svc_id: str) -> Service | None:
        return self.mirror.obj(keys.service(svc_id), Service)

    def tasks(self, svc_id: str | None = None) -> list[Task]:
        tasks = self.mirror.objects(keys.TASKS, Task)
        return [t for t in tasks if t.svc_id == svc_id] if svc_id else tasks

    def task(self, task_id: str) -> Task | None:
        return self.mirror.obj(keys.task(task_id), Task)

    def entity_version(self, key: str) -> int:
        entry = self.mirror.get(key)
        return entry.mod_revision if entry else 0
