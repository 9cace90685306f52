"""``exec``: extra processes inside a running container, with their output streamed back.

A process is entered into every namespace of the container's PID 1 and its root directory
(``nsenter``), with the container's environment plus the exec's own. Without a TTY, stdout and
stderr arrive separately (Docker multiplexes them on the wire); with one, a pseudo-terminal
merges them, as a terminal would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ferry.errors import Conflict, NotFound
from ferry.model.ids import new_hex_id
from ferry.runtime import bundle

STDOUT = 1
STDERR = 2
Sink = Callable[[int, bytes], Awaitable[None]]
MAX_FINISHED = 200


@dataclass
class ExecInstance:
    exec_id: str
    container_id: str
    cmd: list[str]
    env: dict[str, str]
    tty: bool = False
    attach_stdin: bool = False
    workdir: str = ""
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    stdin_queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


class ExecService:
    def __init__(self) -> None:
        self._execs: dict[str, ExecInstance] = {}
        self._background: set[asyncio.Task[int]] = set()

    def create(
        self,
        container_id: str,
        cmd: list[str],
        env: dict[str, str],
        *,
        tty: bool = False,
        attach_stdin: bool = False,
        workdir: str = "",
    ) -> ExecInstance:
        if not cmd:
            raise Conflict("no command given to exec")
        finished = [e for e in self._execs.values() if e.exit_code is not None]
        for old in finished[: max(0, len(finished) - MAX_FINISHED)]:
            self._execs.pop(old.exec_id, None)
        instance = ExecInstance(new_hex_id(), container_id, cmd, env, tty, attach_stdin, workdir)
        self._execs[instance.exec_id] = instance
        return instance

    def get(self, exec_id: str) -> ExecInstance:
        instance = self._execs.get(exec_id)
        if instance is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return instance

    async def run(self, instance: ExecInstance, init_pid: int, sink: Sink) -> int:
        if instance.running or instance.exit_code is not None:
            raise Conflict(f"exec {instance.exec_id[:12]} has already been started")
        instance.running = True
        argv = bundle.exec_argv(init_pid, instance.cmd, instance.workdir)
        try:
            if instance.tty:
                code = await self._run_tty(instance, argv, sink)
            else:
                code = await self._run_pipes(instance, argv, sink)
        finally:
            instance.running = False
        instance.exit_code = code
        return code

    def run_detached(self, instance: ExecInstance, init_pid: int) -> None:
        """``exec -d``: run without anyone reading the output."""

        async def discard(_stream: int, _data: bytes) -> None:
            return None

        task = asyncio.ensure_future(self.run(instance, init_pid, discard))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_pipes(self, instance: ExecInstance, argv: list[str], sink: Sink) -> int:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if instance.attach_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=instance.env,
        )
        instance.pid = process.pid

        async def pump(reader: asyncio.StreamReader | None, stream: int) -> None:
            assert reader is not None
            while chunk := await reader.read(65536):
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

    async def _run_tty(self, instance: ExecInstance, argv: list[str], sink: Sink) -> int:
        master, slave = os.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=slave, stdout=slave, stderr=slave, env=instance.env,
                start_new_session=True,
            )  # fmt: skip
        finally:
            os.close(slave)
        instance.pid = process.pid
        loop = asyncio.get_running_loop()
        output: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                data = b""
            output.put_nowait(data)
            if not data:
                loop.remove_reader(master)

        loop.add_reader(master, readable)

        async def feed() -> None:
            while (data := await instance.stdin_queue.get()) is not None:
                os.write(master, data)

        feeder = asyncio.ensure_future(feed())
        try:
            while data := await output.get():
                await sink(STDOUT, data)
            return await process.wait()
        finally:
            feeder.cancel()
            loop.remove_reader(master)
            os.close(master)
