"""What a container create asks for (``CreateRequest``), and the checks Docker makes of it
at create time, each refused in one line."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field, fields

from ferry.errors import InvalidArgument
from ferry.model.container import (
    NETWORK_HOST,
    NETWORK_NONE,
    ContainerConfig,
    NetworkChoice,
    PublishedPort,
)
from ferry.model.imageconfig import HealthConfig
from ferry.model.runopts import (
    Healthcheck,
    MountSpec,
    Resources,
    RestartName,
    RestartPolicy,
    Security,
    Ulimit,
    capabilities,
    check_mounts,
    check_ulimit,
    check_user,
)
from ferry.model.task_files import FileRef


@dataclass(frozen=True)
class CreateRequest:
    """``cmd`` is Docker's ``Cmd`` and ``entrypoint`` its ``Entrypoint`` (None: not given),
    both merged with the image's at create (agent.container_config)."""

    image: str
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...] | None = None
    name: str = ""
    env: tuple[str, ...] = ()
    hostname: str = ""
    networks: tuple[NetworkChoice, ...] = ()
    auto_remove: bool = False
    labels: dict[str, str] | None = None
    working_dir: str = ""
    task_id: str = ""
    init: bool = False
    ports: tuple[PublishedPort, ...] = ()
    host_ports: tuple[tuple[int, int, str], ...] = ()
    user: str = ""
    group_add: tuple[str, ...] = ()
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    stop_signal: str = ""
    stop_timeout_s: int = -1
    resources: Resources = field(default_factory=Resources)
    security: Security = field(default_factory=Security)
    mounts: tuple[MountSpec, ...] = ()
    files: tuple[FileRef, ...] = ()  # a task's secrets and configs
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)
    shm_size_bytes: int = 0
    extra_hosts: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    # as given (Docker's HealthConfig, zeros unset), or a service's complete check; after the
    # merge with the image's, the check that runs
    healthcheck: Healthcheck | HealthConfig | None = None
    publish_all: bool = False  # -P: every exposed port on an ephemeral host port
    network_mode: str = ""  # "host" or "none" (modes), else the networks say


# the run options a request hands to the container's config unchanged
PASSED_FIELDS = tuple(
    f.name
    for f in fields(ContainerConfig)
    if f.name in {g.name for g in fields(CreateRequest)}
    and f.name not in ("image", "cmd", "name", "labels", "networks")
)


def parse_signal(value: str, default: int = signal.SIGTERM) -> int:
    """A signal by number or name (``9``, ``KILL``, ``SIGKILL``), as Docker reads them."""
    if not value:
        return default
    if value.isdigit():
        number = int(value)
        if not 0 < number < signal.NSIG:
            raise InvalidArgument(f"invalid signal: {value}")
        return number
    name = value.upper() if value.upper().startswith("SIG") else f"SIG{value.upper()}"
    try:
        return int(signal.Signals[name])
    except KeyError as exc:
        raise InvalidArgument(f"invalid signal: {value}") from exc


def check_options(req: CreateRequest, available_caps: tuple[str, ...]) -> None:
    """The run options, refused at create as Docker refuses them (one line each)."""
    req.resources.check(len(os.sched_getaffinity(0)))
    check_mounts(req.mounts)
    if req.shm_size_bytes < 0:
        raise InvalidArgument("SHM size can not be less than 0")  # Docker's message
    for limit in req.ulimits:
        check_ulimit(limit)
    check_user(req.user)
    capabilities(req.security, available_caps)  # unknown names
    parse_signal(req.stop_signal)
    if req.auto_remove and req.restart.name != RestartName.NO:
        raise InvalidArgument("Conflicting options: --restart and --rm")
    if isinstance(req.healthcheck, Healthcheck):
        req.healthcheck.check()
    if req.network_mode not in ("", NETWORK_HOST, NETWORK_NONE):
        raise InvalidArgument(f"invalid network mode {req.network_mode!r}")
    if req.network_mode and req.networks:
        raise InvalidArgument(
            f"container cannot be connected to network {req.networks[0].network} and to "
            f"{req.network_mode} at once"
        )
    if req.network_mode == NETWORK_HOST and (req.ports or req.host_ports):
        raise InvalidArgument(
            "ports cannot be published on the host network: the container listens on the "
            "host's own addresses already"
        )
    for entry in req.extra_hosts:
        host, sep, ip = entry.partition(":")
        if not sep or not host or not ip:
            raise InvalidArgument(f"invalid argument {entry!r} for --add-host: use NAME:IP")


EXIT_CMD_NOT_FOUND = 127
EXIT_CMD_NOT_INVOKABLE = 126
EXIT_UNKNOWN = 128
_NOT_FOUND_WORDS = ("executable file not found", "no such file or directory", "not a directory")
_NOT_INVOKABLE_WORDS = ("permission denied", "is a directory")


def start_failure_exit_code(message: str, previous: int) -> int:
    """The exit code Docker records for a container whose start failed with ``message``
    (moby daemon/start.go ``setExitCodeFromError``): 127 when the command is not found,
    126 when it cannot be invoked; otherwise the code it had, or 128 if it had none."""
    text = message.lower()
    if any(words in text for words in _NOT_FOUND_WORDS):
        return EXIT_CMD_NOT_FOUND
    if any(words in text for words in _NOT_INVOKABLE_WORDS):
        return EXIT_CMD_NOT_INVOKABLE
    return previous or EXIT_UNKNOWN
