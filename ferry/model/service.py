"""Services (a desired state the cluster keeps true) and their tasks (one container each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ferry.errors import InvalidArgument
from ferry.model.runopts import (
    Healthcheck,
    MountSpec,
    Resources,
    check_mounts,
    check_user,
    normalise_cap,
)
from ferry.model.task_files import FileKind, FileRef, check_nesting, check_refs
from ferry.model.update_policy import UpdatePolicy

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
class TaskOptions:
    """A service's run options for its tasks' containers (Docker's ContainerSpec and
    Resources): ``--user``, ``--workdir``, ``--mount``, ``--cap-add/--cap-drop``,
    ``--read-only``, ``--health-*``, ``--limit-*``, ``--reserve-*`` and
    ``--container-label``."""

    user: str = ""
    workdir: str = ""
    mounts: tuple[MountSpec, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    read_only: bool = False
    healthcheck: Healthcheck | None = None
    limit_nano_cpus: int = 0
    limit_memory_bytes: int = 0
    limit_pids: int = 0
    reserve_nano_cpus: int = 0  # the scheduler places against each node's capacity
    reserve_memory_bytes: int = 0
    # ContainerSpec.Labels (--container-label): on each task's container, beside the
    # com.docker.swarm.* labels the node sets (those win, as in Docker)
    labels: dict[str, str] = field(default_factory=dict)
    # ContainerSpec.Secrets and .Configs (--secret, --config): files in each task's container,
    # their data fetched by the task's node when it starts the task (agent/task_files.py)
    secrets: tuple[FileRef, ...] = ()
    configs: tuple[FileRef, ...] = ()

    def check(self) -> None:
        check_refs(self.secrets, FileKind.SECRET)
        check_refs(self.configs, FileKind.CONFIG)
        check_nesting([r.path for r in (*self.secrets, *self.configs)])
        both = {r.path for r in self.secrets} & {r.path for r in self.configs}
        if both:  # two bind mounts on one file: the container would see only one
            raise InvalidArgument(
                f"a secret and a config have a conflicting target: '{sorted(both)[0]}'"
            )
        if any(not key.strip() for key in self.labels):
            raise InvalidArgument("invalid container label: a key cannot be empty (KEY=VALUE)")
        check_user(self.user)
        check_mounts(self.mounts)
        if self.workdir and not self.workdir.startswith("/"):
            raise InvalidArgument(f"--workdir {self.workdir!r} must be an absolute path")
        for cap in (*self.cap_add, *self.cap_drop):
            normalise_cap(cap)
        if self.healthcheck is not None:
            self.healthcheck.check()
        Resources(memory_bytes=self.limit_memory_bytes, nano_cpus=self.limit_nano_cpus).check()
        for name, value in (("--reserve-memory", self.reserve_memory_bytes),
                            ("--reserve-cpu", self.reserve_nano_cpus)):  # fmt: skip
            if value < 0:
                raise InvalidArgument(f"{name} cannot be negative")
        if self.limit_memory_bytes and self.reserve_memory_bytes > self.limit_memory_bytes:
            raise InvalidArgument("--reserve-memory cannot be more than --limit-memory")


@dataclass(frozen=True)
class ContainerTemplate:
    """What every task of a service runs: changing it rolls the tasks over."""

    image: str  # name:tag, or name:tag@sha256:… once pinned to the registry's digest
    cmd: tuple[str, ...]  # Docker's ContainerSpec.Args: the image's Cmd when empty
    env: tuple[str, ...] = ()
    init: bool = False
    stop_grace_s: float = 10.0
    options: TaskOptions = field(default_factory=TaskOptions)
    entrypoint: tuple[str, ...] | None = None  # ContainerSpec.Command: the image's when None
    # X-Registry-Auth as given (--with-registry-auth): the nodes pull the image with it, as
    # swarmkit's PullOptions.RegistryAuth; never shown by inspect
    registry_auth: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    template: ContainerTemplate
    mode: Mode = Mode.REPLICATED
    replicas: int = 1
    networks: tuple[str, ...] = ()  # network ids
    endpoint_mode: EndpointMode = EndpointMode.VIP
    constraints: tuple[str, ...] = ()
    # TaskTemplate.Networks[].Aliases: network id -> more DNS names of the service there (its
    # VIP answers to them, or its tasks in dnsrr mode); docker stack deploy gives each service
    # its short name
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    restart: RestartCondition = RestartCondition.ANY
    ports: tuple[PortSpec, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    # Docker's RestartPolicy.Delay: how long an ended task's slot waits to be refilled (its
    # default, 5 s, also for records written before the field existed)
    restart_delay_s: float = 5.0
    update: UpdatePolicy = field(default_factory=UpdatePolicy)  # UpdateConfig
    rollback: UpdatePolicy = field(default_factory=UpdatePolicy)  # RollbackConfig


@dataclass(frozen=True)
class Service:
    svc_id: str
    spec: ServiceSpec
    spec_version: int = 1  # bumped when the template or placement changes (a rolling update)
    force_update: int = 0  # Docker's ForceUpdate counter: a change rolls the tasks over anyway
    created_at: str = ""
    updated_at: str = ""
    previous: ServiceSpec | None = None  # Docker's PreviousSpec: the spec before the last change
    rolled_at: str = ""  # when the tasks were last told to roll over; Docker's UpdateStatus
    rolled_back: bool = False  # that change was a rollback (UpdateStatus rollback_*)
    # set by the leader when the roll-over met failures beyond its policy: "paused" (the roll
    # stops until the next update) or the reason of an automatic rollback; UpdateStatus.Message
    update_halted: str = ""
    update_paused: bool = False


class TaskState(StrEnum):
    NEW = "new"
    PENDING = "pending"
    ASSIGNED = "assigned"
    PREPARING = "preparing"  # the node obtains the task's image (Docker's "Preparing")
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
    started_at: str = ""  # when it first ran: an update's monitor period counts from it

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
