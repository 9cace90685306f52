"""``exec``: extra processes inside a running container, through ``runc exec``.

The process is an OCI process (``oci.plan_process``): inside the container's namespaces, root,
cgroups and seccomp filter, as its user (or ``-u``), in its working directory (or ``-w``), with
its capabilities (all of them with ``--privileged``) and its environment plus the exec's own.
runc waits for it and exits with its status, 128+N when signal N ended it, as Docker reports.
Without a TTY, stdout and stderr arrive separately (Docker multiplexes them on the wire); with
one (``-t``), the process gets a real pseudo-terminal of the container's /dev/pts (runc makes
it and relays it to a terminal of ferryd's), and its output is one stream, as a terminal's is.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from ferry.errors import Conflict, FerryError, NotFound
from ferry.model.container import Container
from ferry.model.ids import new_hex_id
from ferry.runtime import oci
from ferry.runtime.runner import ContainerRunner, read_in_root
from ferry.runtime.users import resolve_user

STDOUT = 1
STDERR = 2
Sink = Callable[[int, bytes], Awaitable[None]]
MAX_FINISHED = 200
NOT_STARTED = 126  # Docker's exit code for an exec that could not start


@dataclass
class ExecInstance:
    exec_id: str
    container_id: str
    cmd: list[str]
    env: list[str]  # KEY=VALUE, added to the container's
    tty: bool = False
    attach_stdin: bool = False
    workdir: str = ""
    user: str = ""
    privileged: bool = False
    output: frozenset[int] = frozenset({STDOUT, STDERR})  # the streams the client attached
    running: bool = False
    exit_code: int | None = None
    error: str = ""  # why it could not start (Docker's message), "" when it ran
    pid: int = 0
    stdin_queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    console: int | None = None  # the terminal's master side while it runs (-t)


def set_window(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class ExecService:
    def __init__(self, runner: ContainerRunner) -> None:
        self.runner = runner
        self._execs: dict[str, ExecInstance] = {}
        self._background: set[asyncio.Task[int]] = set()

    def create(
        self,
        container_id: str,
        cmd: list[str],
        env: list[str],
        *,
        tty: bool = False,
        attach_stdin: bool = False,
        workdir: str = "",
        user: str = "",
        privileged: bool = False,
        output: frozenset[int] = frozenset({STDOUT, STDERR}),
    ) -> ExecInstance:
        if not cmd:
            raise Conflict("no command given to exec")
        if workdir and not workdir.startswith("/"):
            raise Conflict(f"the working directory '{workdir}' is invalid, it needs to be an "
                           "absolute path")  # fmt: skip
        finished = [e for e in self._execs.values() if e.exit_code is not None]
        for old in finished[: max(0, len(finished) - MAX_FINISHED)]:
            self._execs.pop(old.exec_id, None)
        instance = ExecInstance(
            new_hex_id(),
            container_id,
            cmd,
            env,
            tty,
            attach_stdin,
            workdir,
            user,
            privileged,
            output,
        )
        self._execs[instance.exec_id] = instance
        return instance

    def get(self, exec_id: str) -> ExecInstance:
        instance = self._execs.get(exec_id)
        if instance is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return instance

    def resize(self, exec_id: str, height: int, width: int) -> None:
        """The new size on our terminal, and SIGWINCH to runc, which passes it on to the
        container's terminal (our terminal is not runc's controlling one)."""
        instance = self.get(exec_id)
        if instance.console is not None and height and width:
            set_window(instance.console, height, width)
            with contextlib.suppress(ProcessLookupError):
                os.kill(instance.pid, signal.SIGWINCH)

    def _process_file(self, instance: ExecInstance, container: Container) -> Path:
        config = container.config
        rootfs = self.runner.rootfs(config)
        user = resolve_user(
            instance.user or config.user,
            config.group_add if not instance.user else (),
            read_in_root(rootfs, "etc/passwd"),
            read_in_root(rootfs, "etc/group"),
        )
        process = oci.plan_process(
            config,
            user,
            self.runner.host,
            args=instance.cmd,
            env=oci.environment(config, user) + instance.env,
            cwd=instance.workdir or config.working_dir,
            terminal=instance.tty,
            privileged=instance.privileged,
        )
        path = self.runner.paths(config).bundle / f"exec-{instance.exec_id[:16]}.json"
        path.write_text(json.dumps(process))
        return path

    async def run(self, instance: ExecInstance, container: Container, sink: Sink) -> int:
        """Run the exec to its end: its exit code, or, when it cannot start (no such user or
        group, working directory or command), Docker's code (126, 127 for a command that is
        not found) with Docker's message, sent on stdout as dockerd does and kept in
        ``instance.error``. Every path ends the record: never left running."""
        if instance.running or instance.exit_code is not None:
            raise Conflict(f"exec {instance.exec_id[:12]} has already been started")
        instance.running = True
        bundle = self.runner.paths(container.config).bundle
        log_file = bundle / f"exec-{instance.exec_id[:16]}.log"
        process_file: Path | None = None
        code = NOT_STARTED
        try:
            process_file = self._process_file(instance, container)
            argv = self.runner.runc.exec_argv(
                container.config.container_id, process_file, log_file=log_file
            )
            if instance.tty:
                code = await self._run_tty(instance, argv, log_file, sink)
            else:
                code = await self._run_pipes(instance, argv, log_file, sink)
            failure = runc_failure(log_file)
            if failure:
                instance.error, code = start_failure(failure, instance.cmd[0])
        except FerryError as exc:
            instance.error = str(exc)
        finally:
            instance.running = False
            instance.exit_code = code
            for path in (process_file, log_file):
                if path is not None:
                    path.unlink(missing_ok=True)
        if instance.error:
            await sink(STDOUT, instance.error.encode() + b"\r\n")
        return code

    def run_detached(self, instance: ExecInstance, container: Container) -> None:
        """``exec -d``: run without anyone reading the output."""

        async def discard(_stream: int, _data: bytes) -> None:
            return None

        task = asyncio.ensure_future(self.run(instance, container, discard))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_pipes(
        self, instance: ExecInstance, argv: list[str], log_file: Path, sink: Sink
    ) -> int:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if instance.attach_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        instance.pid = process.pid

        async def pump(reader: asyncio.StreamReader | None, stream: int) -> None:
            assert reader is not None
            while chunk := await reader.read(65536):
                if stream == STDERR:
                    chunk = _without_runc_error(chunk, log_file)
                if chunk:
                    await sink(stream, chunk)

        async def feed() -> None:
            assert process.stdin is not None
            while (data := await instance.stdin_queue.get()) is not None:
                process.stdin.write(data)
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    await process.stdin.drain()
            process.stdin.close()

        feeder = asyncio.ensure_future(feed()) if instance.attach_stdin else None
        await asyncio.gather(pump(process.stdout, STDOUT), pump(process.stderr, STDERR))
        code = await process.wait()
        if feeder is not None:
            feeder.cancel()
        return code

    async def _run_tty(
        self, instance: ExecInstance, argv: list[str], log_file: Path, sink: Sink
    ) -> int:
        # runc takes a console socket only when it detaches (and then nobody waits for the
        # process's status); in the foreground it makes the container's terminal itself and
        # copies between it and its own stdio, which is a terminal of ours, in raw mode.
        master, slave = os.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
            )
        finally:
            os.close(slave)
        instance.pid = process.pid
        instance.console = master

        async def output(stream: int, data: bytes) -> None:
            if data := _without_runc_error(data, log_file):
                await sink(stream, data)

        try:
            await _pump_terminal(master, instance.stdin_queue, output)
            return await process.wait()
        finally:
            instance.console = None
            os.close(master)


def runc_failure(log_file: Path) -> str:
    """runc's own error, from its JSON log (``--log``): why the process did not start ("" when
    it did; the process's own output never goes there)."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                return str(entry.get("msg", ""))
    return ""


def start_failure(runc_message: str, command: str) -> tuple[str, int]:
    """Docker's message and exit code for an exec runc could not start: 127 when the command
    is not found, 126 otherwise (moby's translateContainerdStartErr: 126 for EACCES, 127 for a
    missing command or ENOTDIR)."""
    low = runc_message.lower()
    code = 126
    if (
        command.lower() in low
        and ("executable file not found" in low or "no such file or directory" in low)
    ) or "not a directory" in low:
        code = 127
    return f"OCI runtime exec failed: {runc_message}: unknown", code


def _without_runc_error(chunk: bytes, log_file: Path) -> bytes:
    """runc prints its error on its stderr (the process's) after it has logged it: drop that
    line, the failure is reported in Docker's words instead."""
    failure = runc_failure(log_file)
    if not failure:
        return chunk
    for end in (b"\r\n", b"\n"):  # a terminal's line end, a pipe's
        chunk = chunk.replace(failure.encode() + end, b"", 1)
    return chunk


async def _pump_terminal(master: int, stdin: asyncio.Queue[bytes | None], sink: Sink) -> None:
    """Copy the terminal's output to ``sink`` and the client's input to it, until its other
    side is closed (the process and its children have ended)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(master, False)
    output: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's other side is closed
            data = b""
        output.put_nowait(data)
        if not data:
            loop.remove_reader(master)

    async def feed() -> None:
        while (data := await stdin.get()) is not None:
            with contextlib.suppress(OSError):
                os.write(master, data)

    loop.add_reader(master, readable)
    feeder = asyncio.ensure_future(feed())
    try:
        while data := await output.get():
            await sink(STDOUT, data)
    finally:
        feeder.cancel()
        loop.remove_reader(master)
