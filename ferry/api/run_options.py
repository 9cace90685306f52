"""Docker's container create body → Ferry's run options, and the refusal, by name, of every
field Ferry does not honour.

The docker CLI sends every field of ``ContainerConfig`` and ``HostConfig`` with its zero value
(``"Memory": 0``, ``"Devices": []``, ``"LogConfig": {"Type": "", "Config": {}}``), so a field
is refused only when it carries something: a value other than its zero, or other than
Docker's own default for it (``"MemorySwappiness": -1``, ``"NetworkMode": "default"``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ferry.api.models.containers import (
    ContainerCreate,
    EndpointSettings,
    HealthConfigBody,
    HostConfig,
    MountBody,
)
from ferry.errors import InvalidArgument
from ferry.model.imageconfig import HealthConfig, port_key
from ferry.model.runopts import (
    Healthcheck,
    MountSpec,
    MountType,
    Resources,
    RestartPolicy,
    Security,
    Ulimit,
    check_sysctls,
    parse_restart,
    parse_security_opts,
    parse_tmpfs,
    parse_volume,
)

# Values that mean "nothing asked" besides the zero of each type (Docker's defaults).
_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "MemorySwappiness": (-1,),
    "MemorySwap": (-1,),  # unlimited swap: Ferry sets no swap limit
    "IpcMode": ("private", "shareable"),
    "CgroupnsMode": ("host",),
    "Isolation": ("default",),
    "LogConfig": ({"Type": "json-file", "Config": {}}, {"Type": "json-file"}),
}
_LOG_DRIVERS = ("", "json-file", "k8s-file")


def _empty(value: Any) -> bool:
    if value is None or value is False or value in (0, ""):
        return True
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    return False


def refused(model: BaseModel, where: str) -> list[str]:
    """The names (``HostConfig.Devices``) of the fields given a value that ``model`` does not
    declare, i.e. that Ferry does not implement."""
    out = []
    for name, value in (model.model_extra or {}).items():
        if not _empty(value) and value not in _DEFAULTS.get(name, ()):
            out.append(f"{where}{name}")
    return out


def check_supported(body: ContainerCreate) -> None:
    """Refuse, in one line naming them, the fields of the body Ferry does not honour."""
    names = refused(body, "")
    host = body.HostConfig
    if host is not None:
        names += refused(host, "HostConfig.")
        for mount in host.Mounts or []:
            names += refused(mount, "HostConfig.Mounts.")
        names += _refused_values(host)
    names += _refused_endpoints(body)
    if names:
        raise InvalidArgument(f"Ferry does not support {', '.join(sorted(set(names)))}")


def _refused_endpoints(body: ContainerCreate) -> list[str]:
    """The endpoint settings of ``NetworkingConfig`` Ferry does not apply (``--mac-address``
    arrives as the first network's ``MacAddress``), each named with its network."""
    endpoints = body.NetworkingConfig.EndpointsConfig if body.NetworkingConfig else None
    out = []
    for net, settings in (endpoints or {}).items():
        out += refused_endpoint(settings, f"NetworkingConfig.EndpointsConfig.{net}.")
    return out


def refused_endpoint(settings: EndpointSettings | None, where: str) -> list[str]:
    """The fields of one endpoint's settings (create, network connect) Ferry does not apply."""
    if settings is None:
        return []
    out = refused(settings, where)
    if settings.IPAMConfig is not None:
        out += refused(settings.IPAMConfig, f"{where}IPAMConfig.")
    return out


def _refused_values(host: HostConfig) -> list[str]:
    """Declared fields whose value Ferry cannot honour (another log driver, another IPC
    mode…)."""
    out = []
    log_type = host.LogConfig.Type if host.LogConfig else ""
    if log_type not in _LOG_DRIVERS:
        out.append(f"HostConfig.LogConfig.Type={log_type}")
    elif host.LogConfig is not None and host.LogConfig.Config:
        out.append("HostConfig.LogConfig.Config")
    if host.IpcMode not in ("", "private", "shareable"):
        out.append(f"HostConfig.IpcMode={host.IpcMode}")
    if host.CgroupnsMode not in ("", "host"):
        out.append(f"HostConfig.CgroupnsMode={host.CgroupnsMode}")
    if host.Isolation not in ("", "default"):
        out.append(f"HostConfig.Isolation={host.Isolation}")
    if host.MemorySwappiness not in (None, -1):
        out.append("HostConfig.MemorySwappiness")
    return out


def mount_spec(body: MountBody) -> MountSpec:
    try:
        kind = MountType(body.Type or "volume")
    except ValueError as exc:
        raise InvalidArgument(
            f"mount type {body.Type!r} is not supported: use bind, volume or tmpfs"
        ) from exc
    size = body.TmpfsOptions.SizeBytes if body.TmpfsOptions else 0
    mode = body.TmpfsOptions.Mode if body.TmpfsOptions else 0
    if kind == MountType.TMPFS and body.Source:
        raise InvalidArgument("invalid mount config: a tmpfs mount has no source")
    return MountSpec(kind, body.Target, body.Source, body.ReadOnly, size, mode)


def mounts(body: ContainerCreate) -> tuple[MountSpec, ...]:
    """``Binds``, ``Mounts``, ``Tmpfs`` and the anonymous ``Volumes``, in Docker's order."""
    host = body.HostConfig or HostConfig()
    out = [parse_volume(bind) for bind in host.Binds or []]
    out += [mount_spec(m) for m in host.Mounts or []]
    out += [parse_tmpfs(target, options) for target, options in (host.Tmpfs or {}).items()]
    taken = {m.target for m in out}
    out += [MountSpec(MountType.VOLUME, t) for t in (body.Volumes or {}) if t not in taken]
    return tuple(out)


NS = 1_000_000_000


def health_config(body: HealthConfigBody | None) -> HealthConfig | None:
    """Docker's HealthConfig as given (nanoseconds; a zero field is not set: the image's,
    else Docker's default, once merged with the image's). Raises ``InvalidArgument`` for a
    negative field and for StartInterval, which Ferry does not honour."""
    if body is None:
        return None
    if body.StartInterval:
        raise InvalidArgument("Ferry does not support Healthcheck.StartInterval")
    if min(body.Interval, body.Timeout, body.Retries, body.StartPeriod) < 0:
        raise InvalidArgument("Healthcheck's Interval, Timeout, Retries and StartPeriod "
                              "cannot be negative")  # fmt: skip
    given = HealthConfig(tuple(body.Test or ()), body.Interval / NS, body.Timeout / NS,
                         body.Retries, body.StartPeriod / NS)  # fmt: skip
    return None if given == HealthConfig() else given


def healthcheck(body: HealthConfigBody | None) -> Healthcheck | None:
    """A service's HealthConfig, complete: Docker's defaults in its zero fields. Raises
    ``InvalidArgument`` for fields given without a Test: Ferry keeps a service's check whole
    and does not complete it from the image's."""
    given = health_config(body)
    if given is not None and not given.test:
        raise InvalidArgument(
            "a service's health options need a test (--health-cmd): Ferry does not complete a "
            "service's check from the image's HEALTHCHECK"
        )
    return given.resolved() if given is not None else None


def run_options(body: ContainerCreate) -> dict[str, Any]:
    """The ``CreateRequest`` fields a create body asks for beyond image, command and networks."""
    check_supported(body)
    host = body.HostConfig or HostConfig()
    nnp, unconfined = parse_security_opts(host.SecurityOpt or [])
    policy = host.RestartPolicy
    restart = RestartPolicy()
    if policy is not None and policy.Name:
        restart = parse_restart(
            policy.Name + (f":{policy.MaximumRetryCount}" if policy.MaximumRetryCount else "")
        )
    check_sysctls(host.Sysctls or {}, host_network=host.NetworkMode == "host")
    return {
        "user": body.User,
        "group_add": tuple(host.GroupAdd or ()),
        "tty": body.Tty,
        "open_stdin": body.OpenStdin,
        "stdin_once": body.StdinOnce,
        "stop_signal": body.StopSignal,
        "stop_timeout_s": -1 if body.StopTimeout is None else body.StopTimeout,
        "init": bool(host.Init),
        "resources": Resources(
            memory_bytes=host.Memory,
            memory_reservation_bytes=host.MemoryReservation,
            nano_cpus=host.NanoCpus,
            cpu_shares=host.CpuShares,
            cpu_period_us=host.CpuPeriod,
            cpu_quota_us=host.CpuQuota,
            pids_limit=host.PidsLimit or 0,
        ),
        "security": Security(
            privileged=host.Privileged,
            cap_add=tuple(host.CapAdd or ()),
            cap_drop=tuple(host.CapDrop or ()),
            read_only=host.ReadonlyRootfs,
            no_new_privileges=nnp,
            seccomp_unconfined=unconfined,
        ),
        "mounts": mounts(body),
        "restart": restart,
        "ulimits": tuple(Ulimit(u.Name, u.Soft, u.Hard) for u in host.Ulimits or ()),
        "sysctls": dict(host.Sysctls or {}),
        "shm_size_bytes": host.ShmSize,
        "extra_hosts": tuple(host.ExtraHosts or ()),
        "exposed_ports": tuple(port_key(p, "ExposedPorts") for p in body.ExposedPorts or {}),
        "healthcheck": health_config(body.Healthcheck),
        "publish_all": host.PublishAllPorts,
    }
