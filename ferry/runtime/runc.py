"""runc, the OCI runtime Docker uses, driven through its command line.

Every container's state lives under one ``--root`` per ferryd (``<run dir>/runc``), so runc
finds the containers again after a restart of ferryd. Each call is one short runc process
(10-40 ms here); the long-lived process per container is its monitor (``monitor.py``), never
runc itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ferry.errors import Conflict, KernelError, NotFound

RUNC = "runc"


class Runc:
    def __init__(self, root: Path, binary: str = RUNC) -> None:
        self.root = root
        self.binary = binary

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    async def _run(self, *args: str, stdin: bytes | None = None) -> str:
        process = await asyncio.create_subprocess_exec(
            *self.argv(*args),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin)
        if process.returncode != 0:
            message = _message(err.decode(errors="replace"))
            if "does not exist" in message or "container not found" in message:
                raise NotFound(f"runc {args[0]}: {message}")
            if "not running" in message or "not paused" in message or "is paused" in message:
                raise Conflict(f"runc {args[0]}: {message}")
            raise KernelError(f"runc {args[0]}", args[-1], None, message)
        return out.decode(errors="replace")

    async def start(self, cid: str) -> None:
        await self._run("start", cid)

    async def delete(self, cid: str) -> None:
        """Remove runc's record and cgroups of a container (``--force``: also if it still
        runs); idempotent."""
        try:
            await self._run("delete", "--force", cid)
        except NotFound:
            return

    async def state(self, cid: str) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(await self._run("state", cid))
        except NotFound:
            return None
        return state

    async def pause(self, cid: str) -> None:
        await self._run("pause", cid)

    async def resume(self, cid: str) -> None:
        await self._run("resume", cid)

    async def update(self, cid: str, resources: dict[str, Any]) -> None:
        """Change a running container's cgroup limits (``linux.resources`` shape)."""
        await self._run("update", "--resources", "-", cid, stdin=json.dumps(resources).encode())

    async def pids(self, cid: str) -> list[int]:
        """Every process of the container, as the host numbers them."""
        out = await self._run("ps", "--format", "json", cid)
        return [int(p) for p in json.loads(out or "[]")]

    def exec_argv(
        self,
        cid: str,
        process_file: Path,
        *,
        console_socket: Path | None = None,
        detach: bool = False,
        pid_file: Path | None = None,
        log_file: Path | None = None,
    ) -> list[str]:
        """``runc exec`` of the OCI process in ``process_file``; runc waits for it and exits
        with its status (128+N when a signal N ended it), unless ``detach``. With
        ``log_file``, runc's own errors are also logged there as JSON lines, apart from the
        process's output."""
        args = ["exec", "--process", str(process_file)]
        if console_socket is not None:
            args += ["--tty", "--console-socket", str(console_socket)]
        if detach:
            args.append("--detach")
        if pid_file is not None:
            args += ["--pid-file", str(pid_file)]
        log = ["--log", str(log_file), "--log-format", "json"] if log_file is not None else []
        return [self.binary, "--root", str(self.root), *log, *args, cid]


def _message(stderr: str) -> str:
    """runc's error line without its logrus decoration (``time=… level=error msg="…"``)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return "failed"
    last = lines[-1]
    if 'msg="' in last:
        last = last.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    return last
