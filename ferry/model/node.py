"""Nodes of the swarm: what a node is (spec) and whether it is there (session, liveness)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ferry.model.root_rotation import NodeTLS

HEARTBEAT_S = 2.0  # how often an agent heartbeats
# A session's lease: a node is Down once it lapses, and its tasks are replaced. Swarm declares a
# node down after 15 s without a heartbeat (swarmkit's dispatcher: period 5 s times its grace
# multiplier 3). What it must outlast is a restart of ferryd (an upgrade, a crash) on a loaded
# host: stopping, starting Python and reporting in again took 7 s here under load, and a node
# declared Down meanwhile would have its running tasks killed and replaced.
SESSION_TTL_S = 15
# After a change of leader, a node without a session is Unknown, not Down, for this long: the
# new leader cannot tell a dead node from one that has not reported in yet. Swarm gives 15 s
# (swarmkit's dispatcher: heartbeat period 5 s times its grace multiplier 3). Ferry's shorter
# heartbeat does not shorten it: what the grace must cover is every host of a cluster that
# restarted at once starting its daemon again, one after another on a loaded machine.
LEADER_GRACE_S = 15.0


class Role(StrEnum):
    MANAGER = "manager"
    WORKER = "worker"


class Availability(StrEnum):
    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"


@dataclass(frozen=True)
class Node:
    node_id: str
    hostname: str
    role: Role
    addr: str
    availability: Availability = Availability.ACTIVE
    labels: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    engine_version: str = ""
    ncpu: int = 0
    memory_bytes: int = 0
    images: tuple[str, ...] = ()  # images this node can run besides "host" (it reports them)
    ports: tuple[str, ...] = ()  # "tcp/8080": host ports in use there (listeners, run -p)
    wg_key: str = ""  # its WireGuard public key, for encrypted overlays (it reports it)
    tls: NodeTLS = field(default_factory=NodeTLS)  # its roots and issuer (it reports them)
    left: bool = False
    # a role asked for (``node promote``) and not yet taken: the node takes it itself, as a
    # Swarm node renews its certificate for its Spec.DesiredRole; None: none pending
    desired_role: Role | None = None

    @property
    def wanted_role(self) -> Role:
        """The role this node is to have (Docker's ``Spec.Role``)."""
        return self.desired_role or self.role


@dataclass(frozen=True)
class NodeSession:
    """Lease-bound proof that a node's agent is connected: its absence means the node is down."""

    node_id: str
    lease_id: int
    manager_id: str
    since: str


class NodeStatus(StrEnum):
    """Docker's node states that Ferry uses (``Status.State`` in the API)."""

    READY = "ready"  # its session is alive: it takes tasks
    UNKNOWN = "unknown"  # no session yet, within a new leader's grace: neither used nor lost
    DOWN = "down"  # no session, no grace: its tasks are replaced, its endpoints not served


def node_status(
    node: Node | None,
    session: NodeSession | None,
    leader_since_s: float | None,
    now_s: float,
) -> NodeStatus:
    """A node's liveness from the store's facts alone, so every manager and agent that mirrors
    the store sees the same. ``leader_since_s`` is when the current leader took office (None
    when there is no leader: nobody declares anything down then)."""
    if node is None or node.left:
        return NodeStatus.DOWN
    if session is not None:
        return NodeStatus.READY
    if leader_since_s is None or now_s - leader_since_s < LEADER_GRACE_S:
        return NodeStatus.UNKNOWN
    return NodeStatus.DOWN
