"""Processes Ferry starts and must find again after its own restart.

A supervised process (etcd, a container's monitor) is started in its own session so it
survives a restart of ferryd; it is identified by (pid, start time) so a recycled pid is never
mistaken for it; its exit is noticed through a pidfd on the event loop, whether or not it is
our child.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ferry.errors import KernelError


@dataclass(frozen=True)
class ProcRef:
    pid: int
    start_time: int

    def alive(self) -> bool:
        return start_time_of(self.pid) == self.start_time


def start_time_of(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (None when there is no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie has exited already
        return None
    return int(fields[19])


def in_netns_argv(netns: Path, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the network namespace at ``netns`` (and no other of its)."""
    return ["nsenter", f"--net={netns}", "--", *argv]


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path | None = None,
    cwd: Path | None = None,
    netns: Path | None = None,
    fds: Mapping[int, int] | None = None,
) -> ProcRef:
    """Start ``argv`` in a new session (detached from ferryd), optionally inside ``netns``.
    ``fds`` maps a descriptor number in the child to one of ours it is a copy of (a pipe the
    child reports through)."""
    if netns is not None:
        argv = in_netns_argv(netns, argv)
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)
    ]
    for target, source in (fds or {}).items():
        actions.append((os.POSIX_SPAWN_DUP2, source, target))
    if log_path is not None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        actions.append((os.POSIX_SPAWN_OPEN, 1, str(log_path), flags, 0o640))
        actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
    else:
        actions.append((os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0))
        actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
    old_cwd = None
    if cwd is not None:
        old_cwd = os.getcwd()
        os.chdir(cwd)
    try:
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            dict(env),
            file_actions=actions,
            setsid=True,
            setsigdef=(signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE),
        )
    except OSError as exc:
        raise KernelError("spawn", argv[0], exc.errno, exc.strerror or "") from exc
    finally:
        if old_cwd is not None:
            os.chdir(old_cwd)
    start = start_time_of(pid)
    return ProcRef(pid, start if start is not None else -1)


def reap(pid: int) -> int | None:
    """Collect an exited child's status without blocking; None when it is not our child."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def reap_exited(ref: ProcRef) -> None:
    """Collect ``ref`` if it is our child and has exited (a zombie with its start time), and
    never another process that took its pid."""
    try:
        with open(f"/proc/{ref.pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] == b"Z" and int(fields[19]) == ref.start_time:
        reap(ref.pid)


def signal_process(ref: ProcRef, sig: int) -> bool:
    """Send ``sig`` if ``ref`` is still the same process; False when it is gone."""
    if not ref.alive():
        return False
    try:
        os.kill(ref.pid, sig)
    except ProcessLookupError:
        return False
    return True


def kill_pids(pids: Sequence[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class ExitWatcher:
    """Calls back once when a process exits, through a pidfd on the running event loop."""

    def __init__(self, ref: ProcRef, on_exit: Callable[[int | None], None]) -> None:
        self._ref = ref
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._fd: int | None = None
        self._done = False
        try:
            self._fd = os.pidfd_open(ref.pid)
        except ProcessLookupError:
            self._loop.call_soon(self._fire)
            return
        if ref.alive():
            self._loop.add_reader(self._fd, self._fire)
        else:  # exited (or recycled) between the check and pidfd_open
            self._loop.call_soon(self._fire)

    def _close(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _fire(self) -> None:
        if self._done:
            return
        self._done = True
        self._close()
        self._on_exit(reap(self._ref.pid))

    def cancel(self) -> None:
        self._done = True
        self._close()


async def wait_gone(ref: ProcRef, timeout_s: float) -> bool:
    """Wait until ``ref`` has exited (reaping it if it is our child); False on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while ref.alive():
        reap(ref.pid)
        if not ref.alive():
            break
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    reap(ref.pid)
    return True


def catches(pid: int, sig: int) -> bool:
    """Whether ``pid`` has a handler for ``sig`` or blocks it (and so takes it with sigwait,
    as tini does). A PID namespace's init ignores any other signal (SIGKILL aside), so sending
    it one it does not catch changes nothing."""
    bit = 1 << (sig - 1)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("SigCgt:", "SigBlk:")) and int(line.split()[1], 16) & bit:
                    return True
    except FileNotFoundError:
        pass
    return False


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
    return out
