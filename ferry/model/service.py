"""Services (a desired state the cluster keeps true) and their tasks (one container each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MAX_REPLICAS = 1000
TASK_HISTORY = 5  # finished tasks kept per slot, for `service ps`


class Mode(StrEnum):
    REPLICATED = "replicated"
    GLOBAL = "global"


class EndpointMode(StrEnum):
    VIP = "vip"
    DNSRR = "dnsrr"


class RestartCondition(StrEnum):
    ANY = "any"
    ON_FAILURE = "on-failure"
    NONE = "none"


class PublishMode(StrEnum):
    INGRESS = "ingress"
    HOST = "host"


@dataclass(frozen=True)
class PortSpec:
    published: int
    target: int
    protocol: str = "tcp"
    mode: PublishMode = PublishMode.INGRESS


@dataclass(frozen=True)
class ContainerTemplate:
    """What every task of a service runs: changing it rolls the tasks over."""

    image: str
    cmd: tuple[str, ...]
    env: tuple[str, ...] = ()
    init: bool = False
    stop_grace_s: float = 10.0


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    template: ContainerTemplate
    mode: Mode = Mode.REPLICATED
    replicas: int = 1
    networks: tuple[str, ...] = ()  # network ids
    endpoint_mode: EndpointMode = EndpointMode.VIP
    constraints: tuple[str, ...] = ()
    restart: RestartCondition = RestartCondition.ANY
    ports: tuple[PortSpec, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    svc_id: str
    spec: ServiceSpec
    spec_version: int = 1  # bumped when the template or placement changes (a rolling update)
    force_update: int = 0  # Docker's ForceUpdate counter: a change rolls the tasks over anyway
    created_at: str = ""
    updated_at: str = ""
    previous: ServiceSpec | None = None
    rolled_at: str = ""  # when the tasks were last told to roll over; Docker's UpdateStatus


class TaskState(StrEnum):
    NEW = "new"
    PENDING = "pending"
    ASSIGNED = "assigned"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETE = "complete"
    SHUTDOWN = "shutdown"
    FAILED = "failed"
    REJECTED = "rejected"
    ORPHANED = "orphaned"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        TaskState.COMPLETE,
        TaskState.SHUTDOWN,
        TaskState.FAILED,
        TaskState.REJECTED,
        TaskState.ORPHANED,
    }
)


@dataclass(frozen=True)
class Task:
    task_id: str
    svc_id: str
    service_name: str
    slot: int  # replicated: 1..N; global: 0 (one per node)
    template: ContainerTemplate
    spec_version: int
    desired: TaskState = TaskState.RUNNING
    state: TaskState = TaskState.NEW
    node_id: str = ""
    message: str = ""
    error: str = ""
    container_id: str = ""
    exit_code: int | None = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def name(self) -> str:
        return f"{self.service_name}.{self.slot or self.node_id}.{self.task_id}"

    @property
    def live(self) -> bool:
        """Counts towards the service's replicas: wanted and not finished."""
        return self.desired == TaskState.RUNNING and not self.state.terminal

    @property
    def serving(self) -> bool:
        """Running and meant to: what DNS answers with and the VIPs balance to."""
        return self.state == TaskState.RUNNING and self.desired == TaskState.RUNNING
