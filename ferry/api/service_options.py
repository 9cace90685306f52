"""A service's task options between Docker's TaskTemplate (ContainerSpec, Resources) and
Ferry's ``TaskOptions``, both ways, and the refusal by name of the fields Ferry does not
honour (the docker CLI sends zero values for the rest; those pass)."""

from __future__ import annotations

from typing import Any

from ferry.api.models.services import ResourceModel, TaskTemplateModel
from ferry.api.run_options import NS, healthcheck, mount_spec, refused
from ferry.errors import InvalidArgument
from ferry.model.runopts import MountType
from ferry.model.service import TaskOptions


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
    if names:
        raise InvalidArgument(f"Ferry does not support {', '.join(sorted(set(names)))}")


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


def _mount_json(mount: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Type": mount.type.value, "Target": mount.target}
    if mount.source:
        body["Source"] = mount.source
    if mount.read_only:
        body["ReadOnly"] = True
    if mount.type == MountType.TMPFS and (mount.tmpfs_size_bytes or mount.tmpfs_mode):
        body["TmpfsOptions"] = {"SizeBytes": mount.tmpfs_size_bytes, "Mode": mount.tmpfs_mode}
    return body
