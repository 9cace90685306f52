"""``service create`` and ``service update`` flags for what each task's container gets
(Docker's ContainerSpec and Resources): mounts, user, working directory, capabilities,
read-only root, health check, limits and reservations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferry.cli.runflags import HealthFlags
from ferry.model.runopts import MountType, parse_bytes, parse_cpus, parse_mount


@dataclass
class TaskFlags:
    mounts: list[str] = field(default_factory=list)
    mounts_rm: list[str] = field(default_factory=list)  # update: targets to unmount
    user: str | None = None
    workdir: str | None = None
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    read_only: bool | None = None
    limit_memory: str = ""
    limit_cpu: str = ""
    limit_pids: int | None = None
    reserve_memory: str = ""
    reserve_cpu: str = ""
    health: HealthFlags = field(default_factory=HealthFlags)


def mount_json(text: str) -> dict[str, Any]:
    mount = parse_mount(text)
    body: dict[str, Any] = {"Type": mount.type.value, "Target": mount.target}
    if mount.source:
        body["Source"] = mount.source
    if mount.read_only:
        body["ReadOnly"] = True
    if mount.type == MountType.TMPFS:
        body["TmpfsOptions"] = {"SizeBytes": mount.tmpfs_size_bytes, "Mode": mount.tmpfs_mode}
    return body


def apply(flags: TaskFlags, template: dict[str, Any]) -> None:
    """Change a TaskTemplate (a new one, or the one ``service inspect`` gave) as asked."""
    container = template.setdefault("ContainerSpec", {})
    mounts = [m for m in container.get("Mounts") or [] if m["Target"] not in flags.mounts_rm]
    mounts += [mount_json(m) for m in flags.mounts]
    container["Mounts"] = mounts
    if flags.user is not None:
        container["User"] = flags.user
    if flags.workdir is not None:
        container["Dir"] = flags.workdir
    if flags.read_only is not None:
        container["ReadOnly"] = flags.read_only
    adds = [c for c in container.get("CapabilityAdd") or [] if c not in flags.cap_drop]
    drops = [c for c in container.get("CapabilityDrop") or [] if c not in flags.cap_add]
    container["CapabilityAdd"] = adds + [c for c in flags.cap_add if c not in adds]
    container["CapabilityDrop"] = drops + [c for c in flags.cap_drop if c not in drops]
    health = flags.health.body()
    if health is not None:
        container["HealthCheck"] = health
    resources = template.setdefault("Resources", {})
    limits = resources.setdefault("Limits", {}) or {}
    reserve = resources.setdefault("Reservations", {}) or {}
    if flags.limit_memory:
        limits["MemoryBytes"] = parse_bytes(flags.limit_memory, "--limit-memory")
    if flags.limit_cpu:
        limits["NanoCPUs"] = parse_cpus(flags.limit_cpu)
    if flags.limit_pids is not None:
        limits["Pids"] = flags.limit_pids
    if flags.reserve_memory:
        reserve["MemoryBytes"] = parse_bytes(flags.reserve_memory, "--reserve-memory")
    if flags.reserve_cpu:
        reserve["NanoCPUs"] = parse_cpus(flags.reserve_cpu)
    resources["Limits"], resources["Reservations"] = limits, reserve
