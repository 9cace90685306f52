"""Network namespaces as files, made and entered without forking.

Named namespaces live in ``/run/netns`` exactly as ``ip netns`` keeps them, so ``ip netns list``,
``ip -n`` and ``nsenter --net=`` all see what Ferry made. A namespace is created by a short-lived
thread that ``unshare``s its own network namespace and bind-mounts it onto the file; code that
must run *inside* a namespace runs in such a thread too, so no long-lived thread ever changes
namespace (a thread that did would leak the namespace into unrelated work).

Be aware: ``/proc/1/ns/net`` is unreadable here even as root; nothing in this module needs it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ferry.errors import KernelError

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_dir_lock = threading.Lock()


def _check(result: int, operation: str, obj: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise KernelError(operation, obj, err, os.strerror(err))


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def setns(path: str | Path) -> None:
    """Move the *calling thread* into the network namespace at ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise KernelError("setns", str(path), errno.ENOENT, "no such namespace") from exc
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), "setns", str(path))
    finally:
        os.close(fd)


def _in_thread(fn: Callable[[], T], name: str) -> T:
    """Run ``fn`` in a fresh thread (which may change namespace and then ends); re-raise."""
    result: list[T] = []
    error: list[BaseException] = []

    def worker() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=worker, name=name)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def run_in_netns(path: str | Path, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread inside the namespace at ``path``; the thread then ends."""

    def inside() -> T:
        setns(path)
        return fn()

    return _in_thread(inside, f"netns:{Path(path).name}")


def _is_mountpoint(path: Path) -> bool:
    with open("/proc/self/mountinfo") as mounts:
        return any(line.split()[4] == str(path) for line in mounts)


def ensure_netns_dir() -> None:
    """Make /run/netns a shared mount of its own, as iproute2 does, so both tools agree."""
    with _dir_lock:
        NETNS_DIR.mkdir(parents=True, exist_ok=True)
        if _is_mountpoint(NETNS_DIR):
            return
        raw = str(NETNS_DIR).encode()
        _check(_libc.mount(raw, raw, b"none", MS_BIND | MS_REC, None), "mount", str(NETNS_DIR))
        _check(_libc.mount(b"none", raw, None, MS_SHARED | MS_REC, None), "mount", str(NETNS_DIR))


def create_netns(name: str) -> Path:
    """Create the named namespace; an existing one of that name is an error (names are owned)."""
    ensure_netns_dir()
    path = netns_path(name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError as exc:
        raise KernelError("create netns", name, errno.EEXIST, "already exists") from exc
    os.close(fd)

    def bind() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare", name)
        src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        _check(_libc.mount(src, str(path).encode(), b"none", MS_BIND, None), "mount", name)

    try:
        _in_thread(bind, f"netns-create:{name}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def delete_netns(name: str) -> None:
    """Remove the named namespace file (idempotent); the namespace dies with its last user."""
    path = netns_path(name)
    if not path.exists():
        return
    res = _libc.umount2(str(path).encode(), MNT_DETACH)
    if res != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        err = ctypes.get_errno()
        raise KernelError("umount", str(path), err, os.strerror(err))
    path.unlink(missing_ok=True)


def list_netns(prefix: str = "") -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def netns_inode(path: str | Path) -> int:
    return os.stat(path).st_ino


def in_netns(pid: int, path: str | Path) -> bool:
    """Whether process ``pid`` lives in the network namespace at ``path``."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == netns_inode(path)
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return False


def pids_in_netns(path: str | Path) -> list[int]:
    """Every process whose network namespace is the one at ``path``."""
    try:
        target = netns_inode(path)
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino == target:
                pids.append(int(entry))
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return pids
