"""Reading (and clearing away) the cgroups runc makes for containers.

This host's layout is cgroup v1 with a cgroup2 mount at ``/sys/fs/cgroup/unified`` (hybrid,
see KERNEL-FACTS): runc puts a container into ``<controller>/<cgroups path>`` of each v1
hierarchy. Figures are read straight from the files ``docker stats`` reads.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "blkio", "devices", "cpuset",
               "systemd", "unified")  # fmt: skip


@dataclass(frozen=True)
class CgroupStats:
    memory_usage_bytes: int
    memory_limit_bytes: int
    memory_cache_bytes: int
    cpu_usage_ns: int
    pids_current: int
    pids_limit: int  # 0: unlimited


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, ProcessLookupError, OSError):
        return ""


def _int(path: Path) -> int:
    text = _read(path)
    return int(text) if text.lstrip("-").isdigit() else 0


def stats(cgroups_path: str) -> CgroupStats:
    rel = cgroups_path.lstrip("/")
    memory = CGROUP_ROOT / "memory" / rel
    cache = 0
    for line in _read(memory / "memory.stat").splitlines():
        key, _, value = line.partition(" ")
        if key == "total_inactive_file":
            cache = int(value)
    limit = _read(CGROUP_ROOT / "pids" / rel / "pids.max")
    return CgroupStats(
        memory_usage_bytes=_int(memory / "memory.usage_in_bytes"),
        memory_limit_bytes=_int(memory / "memory.limit_in_bytes"),
        memory_cache_bytes=cache,
        cpu_usage_ns=_int(CGROUP_ROOT / "cpuacct" / rel / "cpuacct.usage"),
        pids_current=_int(CGROUP_ROOT / "pids" / rel / "pids.current"),
        pids_limit=int(limit) if limit.isdigit() else 0,
    )


def memory_limit(cgroups_path: str) -> int:
    return _int(CGROUP_ROOT / "memory" / cgroups_path.lstrip("/") / "memory.limit_in_bytes")


def system_cpu_usage_ns() -> int:
    """Total CPU time of the host since boot, as Docker's stats give ``system_cpu_usage``."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(v) for v in fields) * 1_000_000_000 // ticks


def remove_tree(parent: str) -> list[str]:
    """Remove the (empty) cgroups below ``parent`` in every hierarchy, deepest first: what a
    killed container leaves behind when runc could not delete it (``lab down``)."""
    removed = []
    rel = parent.strip("/")
    for controller in CONTROLLERS:
        top = CGROUP_ROOT / controller / rel
        if not top.is_dir():
            continue
        for directory, _subdirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
                removed.append(directory)
    return removed


def remove_children(parent: str, prefix: str) -> list[str]:
    """``remove_tree`` of every cgroup directly below ``parent`` whose name starts with
    ``prefix``, in every hierarchy."""
    removed = []
    names = set()
    for controller in CONTROLLERS:
        top = CGROUP_ROOT / controller / parent.strip("/")
        if top.is_dir():
            names |= {p.name for p in top.iterdir() if p.is_dir() and p.name.startswith(prefix)}
    for name in sorted(names):
        removed += remove_tree(f"{parent.strip('/')}/{name}")
    return removed


def host_facts() -> tuple[int, tuple[int, ...]]:
    """(the capability bounding set of this process as a bit mask, kernel version)."""
    mask = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
    release = os.uname().release.split("-")[0]
    kernel = tuple(int(p) for p in release.split(".") if p.isdigit())
    return mask, kernel
