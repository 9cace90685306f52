"""A service's task options between Docker's TaskTemplate (ContainerSpec, Resources) and
Ferry's ``TaskOptions``, both ways, and the refusal by name of every field of the service
spec Ferry does not honour (``check_spec``). Zero values pass, and so do the defaults the
docker CLI sends whatever the flags (UpdateConfig and RollbackConfig with Parallelism 1,
FailureAction pause, Monitor 5s, Order stop-first; RestartPolicy MaxAttempts 0:
docker/cli ``cli/command/service/opts.go``): they mean what Ferry does."""

from __future__ import annotations

import platform
from typing import Any

from pydantic import BaseModel

from ferry.api.models.services import (
    ConfigRefModel,
    ContainerSpecModel,
    FileTargetModel,
    ResourceModel,
    SecretRefModel,
    ServiceSpecModel,
    TaskTemplateModel,
    UpdateConfigModel,
)
from ferry.api.run_options import NS, healthcheck, mount_spec, refused
from ferry.errors import InvalidArgument
from ferry.model.runopts import MountType
from ferry.model.service import TaskOptions
from ferry.model.task_files import FileKind, FileRef
from ferry.model.update_policy import UpdatePolicy, failure_action, update_order

NS_5S = 5 * NS
# Declared fields Ferry does not honour, each with the values that mean "as Ferry does".
# Ferry restarts a task after its RestartPolicy.Delay (honoured), without an attempt limit or
# a window. UpdateConfig and RollbackConfig are honoured whole (update_policy).
_RESTART_DEFAULTS: dict[str, tuple[object, ...]] = {
    "MaxAttempts": (None, 0),
    "Window": (None, 0),
}
_PLACEMENT_DEFAULTS: dict[str, tuple[object, ...]] = {
    "Preferences": (None, []),
    "MaxReplicas": (None, 0),
}
# Docker's GOARCH names for what platform.machine() says
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
_ATTACHMENT_DEFAULTS: dict[str, tuple[object, ...]] = {
    "DriverOpts": (None, {}),
}


def _not_default(
    model: BaseModel | None, where: str, defaults: dict[str, tuple[object, ...]]
) -> list[str]:
    """``where.Field=value`` for each declared field of ``defaults`` holding another value, and
    the name of each undeclared field given one."""
    if model is None:
        return []
    names = refused(model, where)
    for field, accepted in defaults.items():
        value = getattr(model, field)
        if value not in accepted:
            names.append(f"{where}{field}{_shown(value)}")
    return names


def _shown(value: object) -> str:
    if isinstance(value, list | dict):
        return ""  # the name alone says it
    if isinstance(value, int) and not isinstance(value, bool) and value and value % NS == 0:
        return f"={value // NS}s"  # durations are nanoseconds
    return f"={value}"


def check_spec(spec: ServiceSpecModel) -> None:
    """Refuse, in one line naming each, the fields of a service spec Ferry does not honour
    (InvalidArgument): the task template's, UpdateConfig's, RollbackConfig's, the mode's, the
    endpoint's and any field Docker's ServiceSpec does not have."""
    names = refused(spec, "")
    names += refused(spec.UpdateConfig, "UpdateConfig.") if spec.UpdateConfig else []
    names += refused(spec.RollbackConfig, "RollbackConfig.") if spec.RollbackConfig else []
    if spec.Mode is not None:
        names += refused(spec.Mode, "Mode.")
        names += refused(spec.Mode.Replicated, "Mode.Replicated.") if spec.Mode.Replicated else []
        names += [f"Mode.Global.{key}" for key in spec.Mode.Global or {}]
    if spec.EndpointSpec is not None:
        names += refused(spec.EndpointSpec, "EndpointSpec.")
        for port in spec.EndpointSpec.Ports or ():
            names += refused(port, "EndpointSpec.Ports.")
            names += ["EndpointSpec.Ports.Name"] if port.Name else []
    template = spec.TaskTemplate
    for where, attachments in (("TaskTemplate.", template.Networks), ("", spec.Networks)):
        for attachment in attachments or ():
            names += _not_default(attachment, f"{where}Networks.", _ATTACHMENT_DEFAULTS)
    names += _not_default(template.RestartPolicy, "TaskTemplate.RestartPolicy.", _RESTART_DEFAULTS)
    names += _not_default(template.Placement, "TaskTemplate.Placement.", _PLACEMENT_DEFAULTS)
    if template.Placement is not None:
        check_platforms(template.Placement.Platforms or [])
    names += refused(template.Resources, "TaskTemplate.Resources.") if template.Resources else []
    if names:
        raise InvalidArgument(f"Ferry does not support {', '.join(sorted(set(names)))}")
    check_supported(template)


def update_policy(model: UpdateConfigModel | None, rollback: bool = False) -> UpdatePolicy:
    """UpdateConfig or RollbackConfig as Ferry keeps it; swarmkit's defaults for what is not
    given (parallelism 1, pause, monitor 5 s, stop-first). A Parallelism of 0 is "all at
    once", as Docker's. Checked by ``UpdatePolicy.check``."""
    if model is None:
        return UpdatePolicy()
    return UpdatePolicy(
        parallelism=1 if model.Parallelism is None else model.Parallelism,
        delay_s=(model.Delay or 0) / NS,
        failure_action=failure_action(model.FailureAction or "", rollback),
        monitor_s=NS_5S / NS if model.Monitor is None else model.Monitor / NS,
        max_failure_ratio=model.MaxFailureRatio or 0.0,
        order=update_order(model.Order or "", rollback),
    )


def policy_json(policy: UpdatePolicy) -> dict[str, Any]:
    """As Docker's inspect shows UpdateConfig (durations in nanoseconds, Delay when set)."""
    out: dict[str, Any] = {"Parallelism": policy.parallelism}
    if policy.delay_s:
        out["Delay"] = round(policy.delay_s * NS)
    out |= {
        "FailureAction": policy.failure_action.value,
        "Monitor": round(policy.monitor_s * NS),
        "MaxFailureRatio": policy.max_failure_ratio,
        "Order": policy.order.value,
    }
    return out


def check_platforms(platforms: list[object], machine: str = "") -> None:
    """``Placement.Platforms`` (the docker CLI sends the image's platforms when it pins the
    image): every Ferry node is Linux on this machine's architecture, so a list that names
    it places tasks as usual, and one that does not is refused (InvalidArgument) rather than
    leaving every task pending."""
    if not platforms:
        return
    arch = machine or platform.machine()
    here = ("linux", _GOARCH.get(arch, arch))
    named = []
    for entry in platforms:
        if not isinstance(entry, dict):
            raise InvalidArgument("TaskTemplate.Placement.Platforms: each is {Architecture, OS}")
        os_name, goarch = str(entry.get("OS", "")).lower(), str(entry.get("Architecture", ""))
        named.append(f"{os_name or '*'}/{goarch or '*'}")
        if os_name in ("", here[0]) and _GOARCH.get(goarch, goarch) in ("", here[1]):
            return
    raise InvalidArgument(
        f"Ferry does not support TaskTemplate.Placement.Platforms without {'/'.join(here)}: "
        f"no node of this swarm is {' or '.join(named)}"
    )


def check_supported(template: TaskTemplateModel) -> None:
    container = template.ContainerSpec
    names = refused(container, "TaskTemplate.ContainerSpec.") + refused(template, "TaskTemplate.")
    resources = template.Resources
    parts = (resources.Limits, resources.Reservations) if resources else (None, None)
    for part, body in zip(("Limits", "Reservations"), parts, strict=True):
        if body is not None:
            names += refused(body, f"TaskTemplate.Resources.{part}.")
    if resources is not None and resources.Reservations and resources.Reservations.Pids:
        names.append("TaskTemplate.Resources.Reservations.Pids")
    if container.Isolation not in ("", "default"):
        names.append(f"TaskTemplate.ContainerSpec.Isolation={container.Isolation}")
    names += _refused_refs(container)
    if names:
        raise InvalidArgument(f"Ferry does not support {', '.join(sorted(set(names)))}")


def _refused_refs(container: ContainerSpecModel) -> list[str]:
    """Fields of secret and config references Ferry does not apply: a config's ``Runtime``
    target (Windows credential specs) and any field Docker's references do not have."""
    names = []
    for field, refs in (("Secrets", container.Secrets), ("Configs", container.Configs)):
        where = f"TaskTemplate.ContainerSpec.{field}."
        for ref in refs or ():
            names += refused(ref, where)
            names += refused(ref.File, f"{where}File.") if ref.File else []
            if isinstance(ref, ConfigRefModel) and ref.Runtime is not None:
                names.append(f"{where}Runtime")
    return names


def _file_ref(ref: SecretRefModel | ConfigRefModel) -> FileRef:
    """A reference as Ferry keeps it; with no ``File`` its name stays empty, which
    ``TaskOptions.check`` refuses in swarmkit's words."""
    target = ref.File or FileTargetModel()
    if isinstance(ref, SecretRefModel):
        kind, obj_id, obj_name = FileKind.SECRET, ref.SecretID, ref.SecretName
    else:
        kind, obj_id, obj_name = FileKind.CONFIG, ref.ConfigID, ref.ConfigName
    return FileRef(kind, obj_id, obj_name, target.Name, target.UID, target.GID, target.Mode)


def task_options(template: TaskTemplateModel) -> TaskOptions:
    check_supported(template)
    container = template.ContainerSpec
    resources = template.Resources
    limits = (resources.Limits if resources else None) or ResourceModel()
    reserve = (resources.Reservations if resources else None) or ResourceModel()
    return TaskOptions(
        user=container.User,
        workdir=container.Dir,
        mounts=tuple(mount_spec(m) for m in container.Mounts or ()),
        cap_add=tuple(container.CapabilityAdd or ()),
        cap_drop=tuple(container.CapabilityDrop or ()),
        read_only=container.ReadOnly,
        healthcheck=healthcheck(container.HealthCheck),
        limit_nano_cpus=limits.NanoCPUs,
        limit_memory_bytes=limits.MemoryBytes,
        limit_pids=limits.Pids,
        reserve_nano_cpus=reserve.NanoCPUs,
        reserve_memory_bytes=reserve.MemoryBytes,
        labels=dict(container.Labels or {}),
        secrets=tuple(_file_ref(r) for r in container.Secrets or ()),
        configs=tuple(_file_ref(r) for r in container.Configs or ()),
    )


def container_spec_json(options: TaskOptions) -> dict[str, Any]:
    """The ContainerSpec fields of ``options``, as Docker shows them."""
    out: dict[str, Any] = {}
    if options.user:
        out["User"] = options.user
    if options.workdir:
        out["Dir"] = options.workdir
    if options.mounts:
        out["Mounts"] = [_mount_json(m) for m in options.mounts]
    if options.read_only:
        out["ReadOnly"] = True
    if options.labels:
        out["Labels"] = dict(options.labels)
    if options.secrets:
        out["Secrets"] = [_ref_json(r, "Secret") for r in options.secrets]
    if options.configs:
        out["Configs"] = [_ref_json(r, "Config") for r in options.configs]
    if options.cap_add:
        out["CapabilityAdd"] = list(options.cap_add)
    if options.cap_drop:
        out["CapabilityDrop"] = list(options.cap_drop)
    check = options.healthcheck
    if check is not None:
        out["HealthCheck"] = {
            "Test": list(check.test),
            "Interval": round(check.interval_s * NS),
            "Timeout": round(check.timeout_s * NS),
            "Retries": check.retries,
            "StartPeriod": round(check.start_period_s * NS),
        }
    return out


def resources_json(options: TaskOptions) -> dict[str, Any]:
    limits = {"NanoCPUs": options.limit_nano_cpus, "MemoryBytes": options.limit_memory_bytes,
              "Pids": options.limit_pids}  # fmt: skip
    reserve = {"NanoCPUs": options.reserve_nano_cpus, "MemoryBytes": options.reserve_memory_bytes}
    return {
        "Limits": {k: v for k, v in limits.items() if v},
        "Reservations": {k: v for k, v in reserve.items() if v},
    }


def _ref_json(ref: FileRef, kind: str) -> dict[str, Any]:
    """A SecretReference or ConfigReference as Docker shows it (the ids, never the data)."""
    return {
        "File": {"Name": ref.name, "UID": ref.uid, "GID": ref.gid, "Mode": ref.mode},
        f"{kind}ID": ref.obj_id,
        f"{kind}Name": ref.obj_name,
    }


def _mount_json(mount: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Type": mount.type.value, "Target": mount.target}
    if mount.source:
        body["Source"] = mount.source
    if mount.read_only:
        body["ReadOnly"] = True
    if mount.type == MountType.TMPFS and (mount.tmpfs_size_bytes or mount.tmpfs_mode):
        body["TmpfsOptions"] = {"SizeBytes": mount.tmpfs_size_bytes, "Mode": mount.tmpfs_mode}
    return body
