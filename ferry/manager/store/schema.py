"""Which domain model lives under which key prefix (what a Mirror decodes values into)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.manager.store import keys
from ferry.model.cluster import ClusterInfo, ClusterSecrets
from ferry.model.logs import DoctorRequest, LogRequest
from ferry.model.network import Endpoint, Network
from ferry.model.node import Node, NodeSession
from ferry.model.service import Service, Task
from ferry.model.swarm_objects import SwarmObject


@dataclass(frozen=True)
class LeaderRecord:
    """Who leads, since when (the grace period's start), and etcd's raft term in which the
    leader took office (0: taken while another member led etcd, or by an older ferryd)."""

    node_id: str
    since: str
    raft_term: int = 0


TYPES: dict[str, type[Any]] = {
    keys.CLUSTER: ClusterInfo,
    keys.LEADER: LeaderRecord,
    keys.NODES: Node,
    keys.SESSIONS: NodeSession,
    keys.NETWORKS: Network,
    keys.ENDPOINTS: Endpoint,
    keys.SERVICES: Service,
    keys.TASKS: Task,
    keys.LOG_REQUESTS: LogRequest,
    keys.DOCTOR_REQUESTS: DoctorRequest,
}

# The manager mirrors everything, including what is never streamed to agents.
MANAGER_TYPES: dict[str, type[Any]] = {
    **TYPES,
    keys.SECRETS: ClusterSecrets,
    keys.STORE_TLS: int,
    keys.SWARM_SECRETS: SwarmObject,
    keys.CONFIGS: SwarmObject,
    keys.SECRET_NAMES: str,
    keys.CONFIG_NAMES: str,
    keys.OBJECT_USES: str,
}
