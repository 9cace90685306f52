"""Containers on one host: what was asked for (config) and what is (state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ferry.model.runopts import (
    Healthcheck,
    MountSpec,
    Resources,
    RestartPolicy,
    Security,
    Ulimit,
)
from ferry.model.task_files import FileRef

# Docker's three predefined networks: "bridge" is a real local network (the default of a
# container without --network); "host" and "none" are modes, not networks.
NETWORK_BRIDGE = "bridge"
NETWORK_HOST = "host"
NETWORK_NONE = "none"
PREDEFINED_NETWORKS = (NETWORK_BRIDGE, NETWORK_HOST, NETWORK_NONE)


class Status(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class NetworkChoice:
    """One ``--network`` of a container, with the aliases and address asked for on it."""

    network: str
    aliases: tuple[str, ...] = ()
    ip: str = ""
    ep_id: str = ""  # an endpoint the manager already reserved (a task's)


@dataclass(frozen=True)
class PublishedPort:
    """``-p [IP:]PUBLISHED:TARGET[/PROTOCOL]``: a host port forwarded to the container."""

    published: int
    target: int
    protocol: str = "tcp"
    host_ip: str = ""  # empty: every address of the host

    def __str__(self) -> str:
        return f"{self.host_ip or '0.0.0.0'}:{self.published}->{self.target}/{self.protocol}"


@dataclass(frozen=True)
class ContainerConfig:
    container_id: str
    name: str
    image: str
    cmd: tuple[str, ...]  # Docker's Cmd: the entrypoint's arguments (the image's if not given)
    env: tuple[str, ...] = ()
    hostname: str = ""
    networks: tuple[NetworkChoice, ...] = ()
    entrypoint: tuple[str, ...] = ()  # Docker's Entrypoint, merged with the image's
    auto_remove: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    created_at: str = ""
    task_id: str = ""  # set when the container runs a service task
    init: bool = False  # run the command under a small init that forwards signals
    ports: tuple[PublishedPort, ...] = ()
    host_ports: tuple[
        tuple[int, int, str], ...
    ] = ()  # a task's host-mode ports: (pub, target, proto)
    user: str = ""  # --user NAME|UID[:GROUP|GID], resolved in the image at start
    group_add: tuple[str, ...] = ()
    tty: bool = False  # -t: the command's stdio is a terminal
    open_stdin: bool = False  # -i: its stdin stays open for attach
    stdin_once: bool = False  # close its stdin when the first attached client leaves
    stop_signal: str = ""  # empty: SIGTERM
    stop_timeout_s: int = -1  # -1: Docker's default, 10 s
    resources: Resources = field(default_factory=Resources)
    security: Security = field(default_factory=Security)
    mounts: tuple[MountSpec, ...] = ()
    # a task's secrets and configs (ContainerSpec.Secrets/Configs): which files, never their
    # data, which the node fetches from a manager each time the container starts
    files: tuple[FileRef, ...] = ()
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    shm_size_bytes: int = 0  # 0: Docker's 64 MiB
    extra_hosts: tuple[str, ...] = ()  # "name:ip" lines for /etc/hosts
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", as the image or --expose said
    network_mode: str = ""  # "host": the host's network namespace; "none": only lo
    healthcheck: Healthcheck | None = None
    publish_all: bool = False  # -P (HostConfig.PublishAllPorts): already among ``ports``
    # the image's id at create: the container runs on it whatever its tag names later, as
    # Docker pins a container (``image`` stays the name it was created from, Config.Image);
    # empty for a container of an older ferryd, which is found by ``image``
    image_id: str = ""

    @property
    def argv(self) -> tuple[str, ...]:
        """What runs: the entrypoint, then the command (Docker's Path and Args)."""
        return self.entrypoint + self.cmd

    @property
    def short_id(self) -> str:
        return self.container_id[:12]

    @property
    def effective_hostname(self) -> str:
        return self.hostname or self.short_id


@dataclass(frozen=True)
class AttachedEndpoint:
    net_id: str
    net_name: str
    driver: str
    ep_id: str
    ip: str
    prefixlen: int
    gateway: str
    mac: str
    ifname: str
    aliases: tuple[str, ...] = ()
    reserved: bool = False  # the manager owns its lifetime (a task's): never released here


@dataclass(frozen=True)
class HealthProbe:
    start: str
    end: str
    exit_code: int
    output: str


@dataclass(frozen=True)
class ContainerState:
    status: Status = Status.CREATED
    shim_pid: int = 0  # the container's monitor (conmon), which outlives ferryd
    shim_start: int = 0
    pid: int = 0
    pid_start: int = 0
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    netns: str = ""
    endpoints: tuple[AttachedEndpoint, ...] = ()
    restart_count: int = 0
    oom_killed: bool = False
    paused: bool = False
    stopped_by_user: bool = False  # a stop or kill asked for: no restart policy applies
    restarting: bool = False  # waiting out the restart policy's delay
    health: str = ""  # "", starting, healthy, unhealthy (Docker's State.Health.Status)
    health_failing: int = 0  # failures in a row
    health_log: tuple[HealthProbe, ...] = ()  # the last few probes, newest last


@dataclass(frozen=True)
class Container:
    config: ContainerConfig
    state: ContainerState

    @property
    def running(self) -> bool:
        return self.state.status == Status.RUNNING
