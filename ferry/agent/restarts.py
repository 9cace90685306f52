"""Restart policies of standalone containers, as Docker's restart manager applies them
(moby ``restartmanager``): whether an exit restarts the container, after what delay, and
which containers a starting ferryd starts again.

A task's container never restarts by itself: the orchestrator replaces tasks.
"""

from __future__ import annotations

import time

from ferry.model.container import Container, ContainerConfig, ContainerState
from ferry.model.runopts import RestartName
from ferry.model.times import epoch

RESTART_DELAY_S = 0.1  # 100 ms, doubled after each quick failure
RESTART_MAX_DELAY_S = 60.0
RESTART_RESET_S = 10.0  # a run this long resets the delay


def wants_restart(config: ContainerConfig, state: ContainerState) -> bool:
    """Whether the exit recorded in ``state`` restarts the container."""
    if config.task_id or config.auto_remove:
        return False
    return config.restart.wants_restart(state.exit_code, state.restart_count, state.stopped_by_user)


def restarts_at_start(container: Container) -> bool:
    """A container a starting ferryd starts again (Docker does so at daemon start): one that
    was waiting to restart, one with ``always``, one with ``unless-stopped`` that the user did
    not stop."""
    policy = container.config.restart.name
    if container.config.task_id or container.config.auto_remove or container.running:
        return False
    if container.state.restarting:
        return True
    if not container.state.started_at:
        return False  # created, never started
    return policy == RestartName.ALWAYS or (
        policy == RestartName.UNLESS_STOPPED and not container.state.stopped_by_user
    )


class RestartBackoff:
    """The delay before each restart: 100 ms, doubling while the runs stay short (under
    10 s), at most a minute."""

    def __init__(self) -> None:
        self._delays: dict[str, float] = {}

    def next_delay(self, cid: str, started_at: str, now_s: float | None = None) -> float:
        now_s = time.time() if now_s is None else now_s
        ran_s = now_s - epoch(started_at) if started_at else 0.0
        delay = self._delays.get(cid, RESTART_DELAY_S)
        if ran_s >= RESTART_RESET_S:
            delay = RESTART_DELAY_S
        self._delays[cid] = min(delay * 2, RESTART_MAX_DELAY_S)
        return delay

    def forget(self, cid: str) -> None:
        self._delays.pop(cid, None)
