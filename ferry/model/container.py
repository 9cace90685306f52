"""Containers on one host: what was asked for (config) and what is (state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
    cmd: tuple[str, ...]
    env: tuple[str, ...] = ()
    hostname: str = ""
    networks: tuple[NetworkChoice, ...] = ()
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
class ContainerState:
    status: Status = Status.CREATED
    shim_pid: int = 0
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


@dataclass(frozen=True)
class Container:
    config: ContainerConfig
    state: ContainerState

    @property
    def running(self) -> bool:
        return self.state.status == Status.RUNNING
