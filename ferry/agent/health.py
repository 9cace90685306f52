"""Health checks of running containers, as Docker runs them (moby ``daemon/health.go``).

Each running container with a health check gets a loop: every ``interval`` its command runs
inside the container (``runc exec``, with the container's user and confinement), and must
end with status 0 within ``timeout``. The state is ``starting`` until the first success, then
``healthy``; ``retries`` failures in a row make it ``unhealthy`` (failures during the start
period do not count). The last five probes are kept for ``inspect`` (State.Health.Log).
A change of state is reported (``on_change``): a task is running only once healthy, and an
unhealthy one is replaced by the orchestrator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace

from ferry.daemon.logs import kv
from ferry.model.container import Container, HealthProbe
from ferry.model.runopts import Healthcheck
from ferry.model.times import now_iso
from ferry.runtime import oci
from ferry.runtime.runner import ContainerRunner, read_in_root
from ferry.runtime.users import resolve_user

log = logging.getLogger("ferry.health")

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
KEEP_PROBES = 5
OUTPUT_BYTES = 4096  # Docker keeps at most 4 KiB of a probe's output


def next_state(
    check: Healthcheck, status: str, failing: int, ok: bool, in_start_period: bool
) -> tuple[str, int]:
    """(status, failures in a row) after one probe (pure; Docker's rules)."""
    if ok:
        return HEALTHY, 0
    if in_start_period and status != HEALTHY:
        return status or STARTING, failing  # does not count yet
    failing += 1
    if failing >= check.retries:
        return UNHEALTHY, failing
    return status or STARTING, failing


class HealthChecks:
    def __init__(
        self,
        runner: ContainerRunner,
        get: Callable[[str], Container | None],
        save: Callable[[Container], None],
        on_change: Callable[[Container], None],
    ) -> None:
        self._runner = runner
        self._get = get
        self._save = save
        self.on_change = on_change
        self._loops: dict[str, asyncio.Task[None]] = {}

    def watch(self, container: Container) -> None:
        check = container.config.healthcheck
        cid = container.config.container_id
        if check is None or not check.enabled or cid in self._loops:
            return
        self._loops[cid] = asyncio.get_running_loop().create_task(self._loop(cid, check))

    def forget(self, cid: str) -> None:
        task = self._loops.pop(cid, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        for task in self._loops.values():
            task.cancel()
        for task in list(self._loops.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()

    async def _loop(self, cid: str, check: Healthcheck) -> None:
        began = time.monotonic()
        container = self._get(cid)
        if container is not None and not container.state.health:
            self._save(replace(container, state=replace(container.state, health=STARTING)))
        while True:
            await asyncio.sleep(check.interval_s)
            container = self._get(cid)
            if container is None or not container.running:
                self._loops.pop(cid, None)
                return
            if container.state.paused:
                continue
            start = now_iso()
            code, output = await self._probe(container, check)
            container = self._get(cid)
            if container is None or not container.running:
                self._loops.pop(cid, None)
                return
            state = container.state
            status, failing = next_state(
                check, state.health, state.health_failing, code == 0,
                time.monotonic() - began < check.start_period_s,
            )  # fmt: skip
            probe = HealthProbe(start, now_iso(), code, output)
            updated = replace(
                container,
                state=replace(
                    state,
                    health=status,
                    health_failing=failing,
                    health_log=(*state.health_log, probe)[-KEEP_PROBES:],
                ),
            )
            self._save(updated)
            if status != state.health:
                log.info("health", extra=kv(name=container.config.name, status=status))
                self.on_change(updated)

    async def _probe(self, container: Container, check: Healthcheck) -> tuple[int, str]:
        """The check's command inside the container: (exit status, output); -1 on timeout."""
        config = container.config
        rootfs = self._runner.rootfs(config)
        user = resolve_user(config.user, config.group_add, read_in_root(rootfs, "etc/passwd"),
                            read_in_root(rootfs, "etc/group"))  # fmt: skip
        process = oci.plan_process(
            config, user, self._runner.host, args=check.argv(),
            env=oci.environment(config, user), cwd=config.working_dir, terminal=False,
            privileged=False,
        )  # fmt: skip
        path = self._runner.paths(config).bundle / f"health-{os.urandom(4).hex()}.json"
        pid_file = path.with_suffix(".pid")
        path.write_text(json.dumps(process))
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._runner.runc.exec_argv(config.container_id, path, pid_file=pid_file),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), check.timeout_s)
            except TimeoutError:
                # the probe itself (runc would outlive a kill of its own and leave it behind)
                with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
                await proc.wait()
                return -1, f"Health check exceeded timeout ({check.timeout_s}s)"
            text = out[:OUTPUT_BYTES].decode(errors="replace")
            return proc.returncode if proc.returncode is not None else -1, text
        finally:
            path.unlink(missing_ok=True)
            pid_file.unlink(missing_ok=True)
