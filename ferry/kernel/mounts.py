"""Mounts in ferryd's own mount namespace: a container's root filesystem (an overlay of its
image) and the tmpfs holding its secrets and configs are mounted here before runc takes it,
and unmounted when the container has ended.

Be aware: these mounts live in the host's mount namespace, so a crash leaves them behind;
``unmount_under`` removes every mount below a directory (``lab down``, a restarted ferryd).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence
from pathlib import Path

from ferry.errors import KernelError

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
MNT_DETACH = 2


OPTIONS_MAX_BYTES = 4095  # mount(2) copies its data argument into one page


def mount_overlay(lowers: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
    """``mount -t overlay`` of ``lowers`` (read-only, **bottom first**, as an image lists its
    layers) under ``upper`` at ``target``. The kernel takes the lower directories top first
    (overlayfs documentation, "Multiple lower layers")."""
    if not lowers:
        raise KernelError("mount overlay", str(target), None, "no lower directory")
    for path in (*lowers, upper, work, target):
        if "," in str(path) or ":" in str(path):  # the option string's separators
            raise KernelError("mount overlay", str(target), None, f"unusable path {path}")
    lowerdir = ":".join(str(p) for p in reversed(lowers))
    options = f"lowerdir={lowerdir},upperdir={upper},workdir={work}".encode()
    if len(options) > OPTIONS_MAX_BYTES:
        raise KernelError(
            "mount overlay", str(target), None,
            f"{len(lowers)} layers make mount options longer than a page: use a state "
            "directory with a shorter path",
        )  # fmt: skip
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options) != 0:
        errno = ctypes.get_errno()
        raise KernelError("mount overlay", str(target), errno, os.strerror(errno))


MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


def mount_tmpfs(target: Path, size_bytes: int, mode: int = 0o700) -> None:
    """A memory-only filesystem of at most ``size_bytes`` at ``target`` (nosuid, nodev,
    noexec): what a task's secrets are written to, so they never reach a disk (as Docker's
    daemon mounts one per container for them)."""
    options = f"size={size_bytes},mode={mode:o}".encode()
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", flags, options) != 0:
        errno = ctypes.get_errno()
        raise KernelError("mount tmpfs", str(target), errno, os.strerror(errno))


def is_mounted(target: Path) -> bool:
    wanted = str(target)
    return any(point == wanted for point in _mount_points())


def unmount(target: Path) -> None:
    """Detach ``target`` if something is mounted there (idempotent)."""
    if not is_mounted(target):
        return
    if _libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise KernelError("umount", str(target), errno, os.strerror(errno))


def unmount_under(directory: Path) -> list[str]:
    """Detach every mount at or below ``directory``, deepest first; returns what it removed."""
    prefix = str(directory).rstrip("/") + "/"
    points = sorted({p for p in _mount_points() if p.startswith(prefix)}, key=len, reverse=True)
    for point in points:
        _libc.umount2(point.encode(), MNT_DETACH)
    return points


def _mount_points() -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # field 5 is the mount point, with spaces and the like escaped as octal
            out.append(line.split()[4].encode().decode("unicode_escape"))
    return out
