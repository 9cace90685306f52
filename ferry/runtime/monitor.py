"""Each container's monitor: Debian's ``conmon`` (podman's and CRI-O's), one small C process
per container that outlives ferryd.

Why conmon and not a monitor of Ferry's own: it holds what must survive a restart of ferryd —
the container's stdio, its exit status, its log — in 1.9 MB of memory per container (measured
here: ``runc run`` kept in the foreground as the monitor takes 10 MB, a bare Python process
13.6 MB; 100 containers: 190 MB of conmon against 1 to 1.4 GB), and it already speaks
runc's console socket (``-t``), keeps stdout and stderr apart in its log (one record per line
with the time and the stream: ``<RFC 3339 time> stdout|stderr F|P <text>``, the CRI format,
read by ``logs.py``), serves an attach socket (SOCK_SEQPACKET; output packets start with 2
for stdout or 3 for stderr, what is written to it goes to the container's stdin), resizes the
terminal through its ``ctl`` fifo, notices an OOM kill (an ``oom`` file) and writes the exit
status (128+N for a signal) to ``<exit dir>/<id>``. See ``benchmarks/runtime.py`` for the
measured figures.

How it starts: conmon runs ``runc create`` and reports the container's PID (or runc's error)
as one JSON line on a pipe it inherits (``_OCI_SYNCPIPE``); then ``runc start`` runs the
command. conmon forks into its own session and ferryd watches it by (pid, start time).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
from dataclasses import dataclass
from pathlib import Path

from ferry.errors import InvalidArgument, KernelError, Unavailable
from ferry.kernel import proc

CONMON = "conmon"
CREATE_TIMEOUT_S = 30.0
SYNC_FD = 3


@dataclass(frozen=True)
class Launched:
    monitor: proc.ProcRef
    init_pid: int


@dataclass(frozen=True)
class MonitorPaths:
    """Where a container's monitor keeps its files: in the container's directory, its bundle
    below it, and a link to the bundle in ``socket_dir``, which keeps the attach socket's path
    under the 108 bytes of a unix socket address."""

    directory: Path
    socket_dir: Path
    short_id: str

    @property
    def bundle(self) -> Path:
        return self.directory / "bundle"

    @property
    def log(self) -> Path:
        return self.directory / "container.log"

    @property
    def exit_dir(self) -> Path:
        return self.directory / "exit"

    @property
    def pid_file(self) -> Path:
        return self.bundle / "init.pid"

    @property
    def monitor_pid_file(self) -> Path:
        return self.bundle / "conmon.pid"

    @property
    def attach_socket(self) -> Path:
        return self.socket_dir / self.short_id / "attach"

    @property
    def ctl(self) -> Path:
        return self.bundle / "ctl"

    @property
    def oom_file(self) -> Path:
        return self.bundle / "oom"

    def exit_file(self, cid: str) -> Path:
        return self.exit_dir / cid


def conmon_argv(
    cid: str,
    name: str,
    paths: MonitorPaths,
    runc_argv: list[str],
    *,
    tty: bool,
    stdin: bool,
    leave_stdin_open: bool,
) -> list[str]:
    """conmon's command line (``runc_argv``: the runc binary and its global options)."""
    argv = [
        CONMON, "--api-version", "1", "--cid", cid, "--cuuid", paths.short_id, "--name", name,
        "--runtime", runc_argv[0], "--bundle", str(paths.bundle),
        "--container-pidfile", str(paths.pid_file), "--conmon-pidfile", str(paths.monitor_pid_file),
        "--log-path", f"k8s-file:{paths.log}", "--exit-dir", str(paths.exit_dir),
        "--socket-dir-path", str(paths.socket_dir), "--log-level", "error", "--no-sync-log",
    ]  # fmt: skip
    for arg in runc_argv[1:]:
        argv += ["--runtime-arg", arg]
    if tty:
        argv.append("--terminal")
    if stdin:
        argv.append("--stdin")
        if leave_stdin_open:
            argv.append("--leave-stdin-open")
    return argv


def _read_sync(fd: int, timeout_s: float) -> bytes:
    """The first line conmon writes on the sync pipe (blocking; run in a worker thread)."""
    data = b""
    while b"\n" not in data:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            raise Unavailable("the container's runtime did not answer in time")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _runc_error(message: str) -> str:
    """runc's own words from what conmon relays (``time=… level=error msg="…"``)."""
    text = message.strip()
    if 'msg="' in text:
        text = text.split('msg="', 1)[1].rsplit('"', 1)[0]
        text = text.replace('\\"', '"').replace("\\\\", "\\")
    return text


async def launch(argv: list[str], paths: MonitorPaths) -> Launched:
    """Start conmon (which runs ``runc create``) and wait until the container exists, stopped
    before its command. Raises InvalidArgument with runc's reason when it cannot be created
    (a missing command, a bad mount), in Docker's words (containerd's ``failed to create
    task for container: failed to create shim task: OCI runtime create failed: …``)."""
    paths.exit_dir.mkdir(exist_ok=True)
    paths.socket_dir.mkdir(parents=True, exist_ok=True)
    for stale in (paths.pid_file, paths.monitor_pid_file, paths.oom_file):
        stale.unlink(missing_ok=True)
    read_fd, write_fd = os.pipe()
    try:
        parent = proc.spawn(
            argv,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                 "_OCI_SYNCPIPE": str(SYNC_FD)},
            cwd=paths.bundle,  # conmon writes its ``oom`` file into its working directory
            fds={SYNC_FD: write_fd},
            log_path=paths.directory / "monitor.log",  # conmon's own errors
        )  # fmt: skip
    finally:
        os.close(write_fd)
    try:
        raw = await asyncio.to_thread(_read_sync, read_fd, CREATE_TIMEOUT_S)
    finally:
        os.close(read_fd)
        # conmon's first process forks the monitor and exits: collect it
        await proc.wait_gone(parent, 5.0)
    try:
        report = json.loads(raw.decode(errors="replace").splitlines()[0])
    except (ValueError, IndexError) as exc:
        raise KernelError("conmon", paths.short_id, None, "no report from the monitor") from exc
    pid = int(report.get("data", -1))
    if pid <= 0:
        reason = _runc_error(str(report.get("message", "")))
        raise InvalidArgument(
            "failed to create task for container: failed to create shim task: "
            f"OCI runtime create failed: {reason}: unknown"
        )
    try:
        monitor_pid = int(paths.monitor_pid_file.read_text().strip())
    except (FileNotFoundError, ValueError) as exc:
        raise KernelError("conmon", paths.short_id, None, "no monitor pid file") from exc
    start = proc.start_time_of(monitor_pid)
    return Launched(proc.ProcRef(monitor_pid, start if start is not None else -1), pid)


def read_exit_code(paths: MonitorPaths, cid: str) -> int | None:
    try:
        return int(paths.exit_file(cid).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def resize(paths: MonitorPaths, height: int, width: int) -> None:
    """Resize the container's terminal through conmon's control fifo (message type 1)."""
    try:
        fd = os.open(paths.ctl, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no monitor listening: nothing to resize
    try:
        os.write(fd, f"1 {height} {width}\n".encode())
    finally:
        os.close(fd)
