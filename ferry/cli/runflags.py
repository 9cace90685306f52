"""``ferry run``'s flags as Docker's create body (``ContainerConfig`` + ``HostConfig``), the way
the docker CLI builds it: ``-v`` goes as ``Binds`` text, ``--mount`` as structured ``Mounts``,
sizes and CPUs as numbers. The daemon validates the rest and refuses what it cannot honour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferry.cli.ports import port_bindings
from ferry.errors import InvalidArgument
from ferry.model.runopts import (
    MountType,
    parse_bytes,
    parse_cpus,
    parse_duration,
    parse_mount,
    parse_restart,
    parse_ulimit,
)


@dataclass
class RunFlags:
    image: str
    command: list[str]
    networks: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    ip: str = ""
    hostname: str = ""
    env: list[str] = field(default_factory=list)
    auto_remove: bool = False
    workdir: str = ""
    publish: list[str] = field(default_factory=list)
    interactive: bool = False
    tty: bool = False
    user: str = ""
    entrypoint: str | None = None
    memory: str = ""
    memory_reservation: str = ""
    cpus: str = ""
    cpu_shares: int = 0
    pids_limit: int = 0
    read_only: bool = False
    tmpfs: list[str] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    init: bool = False
    stop_signal: str = ""
    stop_timeout: int | None = None
    restart: str = ""
    volumes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    ulimits: list[str] = field(default_factory=list)
    sysctls: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
    group_add: list[str] = field(default_factory=list)
    shm_size: str = ""
    labels: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    health: HealthFlags | None = None
    publish_all: bool = False  # -P


@dataclass
class HealthFlags:
    """``--health-cmd`` and friends (also ``service create/update``)."""

    cmd: str = ""
    interval: str = ""
    timeout: str = ""
    retries: int = 0
    start_period: str = ""
    none: bool = False  # --no-healthcheck

    def body(self, partial: bool = False) -> dict[str, Any] | None:
        """Docker's HealthConfig, durations in nanoseconds; None when nothing was asked.
        ``partial`` (docker run): options without ``--health-cmd`` go without a test, and
        override those fields of the image's HEALTHCHECK (Docker's merge); a service's check
        is given whole, so there they need ``--health-cmd``."""
        given = self.interval or self.timeout or self.retries or self.start_period
        if self.none:
            if self.cmd or given:
                raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
            return {"Test": ["NONE"]}
        if not self.cmd and not (partial and given):
            if given:
                raise InvalidArgument("--health-* options need --health-cmd")
            return None
        ns = 1_000_000_000
        return {
            "Test": ["CMD-SHELL", self.cmd] if self.cmd else None,
            "Interval": round(parse_duration(self.interval, "--health-interval") * ns)
            if self.interval else 0,
            "Timeout": round(parse_duration(self.timeout, "--health-timeout") * ns)
            if self.timeout else 0,
            "Retries": self.retries,
            "StartPeriod": round(parse_duration(self.start_period, "--health-start-period") * ns)
            if self.start_period else 0,
        }  # fmt: skip


def _mount_body(text: str) -> dict[str, Any]:
    mount = parse_mount(text)
    body: dict[str, Any] = {
        "Type": mount.type.value,
        "Target": mount.target,
        "Source": mount.source,
        "ReadOnly": mount.read_only,
    }
    if mount.type == MountType.TMPFS:
        body["TmpfsOptions"] = {"SizeBytes": mount.tmpfs_size_bytes, "Mode": mount.tmpfs_mode}
    return body


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} {item!r}: use KEY=VALUE")
        out[key] = value if sep else ""
    return out


def _host_config(flags: RunFlags) -> dict[str, Any]:
    restart = parse_restart(flags.restart) if flags.restart else None
    return {
        "NetworkMode": flags.networks[0] if flags.networks else "default",
        "AutoRemove": flags.auto_remove,
        "PortBindings": port_bindings(flags.publish),
        "PublishAllPorts": flags.publish_all,
        "Binds": flags.volumes,
        "Mounts": [_mount_body(m) for m in flags.mounts],
        "Tmpfs": dict(t.partition(":")[::2] for t in flags.tmpfs),
        "RestartPolicy": {"Name": restart.name.value, "MaximumRetryCount": restart.max_retries}
        if restart
        else None,
        "CapAdd": flags.cap_add,
        "CapDrop": flags.cap_drop,
        "Privileged": flags.privileged,
        "ReadonlyRootfs": flags.read_only,
        "SecurityOpt": flags.security_opt,
        "GroupAdd": flags.group_add,
        "ShmSize": parse_bytes(flags.shm_size, "--shm-size") if flags.shm_size else 0,
        "Sysctls": _pairs(flags.sysctls, "--sysctl"),
        "Init": flags.init or None,
        "Memory": parse_bytes(flags.memory, "--memory") if flags.memory else 0,
        "MemoryReservation": parse_bytes(flags.memory_reservation, "--memory-reservation")
        if flags.memory_reservation
        else 0,
        "NanoCpus": parse_cpus(flags.cpus) if flags.cpus else 0,
        "CpuShares": flags.cpu_shares,
        "PidsLimit": flags.pids_limit or None,
        "Ulimits": [
            {"Name": u.name, "Soft": u.soft, "Hard": u.hard}
            for u in (parse_ulimit(text) for text in flags.ulimits)
        ],
        "ExtraHosts": flags.add_hosts,
    }


def create_body(flags: RunFlags) -> dict[str, Any]:
    """The body of ``POST /containers/create`` for these flags."""
    endpoints: dict[str, Any] = {}
    for i, net in enumerate(flags.networks):
        if net in ("host", "none"):
            continue  # modes, not networks
        settings: dict[str, Any] = {"Aliases": flags.aliases}
        if flags.ip and i == 0:
            settings["IPAMConfig"] = {"IPv4Address": flags.ip}
        endpoints[net] = settings
    entrypoint = None
    if flags.entrypoint is not None:  # --entrypoint "" clears the image's (the CLI sends [""])
        entrypoint = [flags.entrypoint]
    exposed: dict[str, dict[str, str]] = {}
    for port in flags.expose:
        number, _, proto = port.partition("/")
        exposed[f"{number}/{proto or 'tcp'}"] = {}
    return {
        "Image": flags.image,
        "Cmd": flags.command,
        "Entrypoint": entrypoint,
        "Env": flags.env,
        "Hostname": flags.hostname,
        "WorkingDir": flags.workdir,
        "User": flags.user,
        "Tty": flags.tty,
        "OpenStdin": flags.interactive,
        "StdinOnce": flags.interactive,
        "AttachStdin": flags.interactive,
        "StopSignal": flags.stop_signal,
        "StopTimeout": flags.stop_timeout,
        "Labels": _pairs(flags.labels, "--label"),
        "ExposedPorts": exposed,
        "Healthcheck": flags.health.body(partial=True) if flags.health else None,
        "HostConfig": _host_config(flags),
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
