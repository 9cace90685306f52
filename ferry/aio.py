"""asyncio helpers used across the daemon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from ferry.errors import FerryError


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[object] | asyncio.Task[None] | None],
) -> None:
    """Cancel tasks and wait until each has finished (its ``finally`` blocks have run)."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Periodic:
    """``step`` run every ``every_s`` seconds from ``start`` until ``stop``. The loop never
    dies of a failed step: a FerryError (the world not ready yet) is logged once per cause as
    ``waiting``, anything else with its traceback as ``crashed``, and the next pass tries
    again."""

    def __init__(
        self,
        step: Callable[[], Awaitable[object]],
        every_s: float,
        log: logging.Logger,
        *,
        waiting: str,
        crashed: str,
    ) -> None:
        self._step = step
        self._every_s = every_s
        self._log = log
        self._waiting = waiting
        self._crashed = crashed
        self._task: asyncio.Task[None] | None = None
        self._last_error = ""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
                self._last_error = ""
            except FerryError as exc:
                if str(exc) != self._last_error:  # once per cause, not every pass
                    self._log.warning(self._waiting, extra={"fields": {"error": str(exc)}})
                self._last_error = str(exc)
            except Exception:
                self._log.exception(self._crashed)
            await asyncio.sleep(self._every_s)
