"""The level-triggered loop every reconciler in Ferry runs on.

A reconciler computes the whole wanted state from what it reads and makes the world match it;
it never acts on individual events. This base class owns the loop around that: any relevant
change marks it dirty, marks made while a pass runs coalesce into one more pass, a pass that
fails is logged, its subclass drops whatever it cached about the world (``failed``), and it runs
again after a short back-off. With a mirror, nothing happens before the first snapshot arrived:
an empty mirror would read as "nothing is wanted".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ferry.aio import cancel_and_wait
from ferry.errors import FerryError
from ferry.model.mirror import Mirror

log = logging.getLogger("ferry.reconcile")


class Reconciler:
    name = "reconciler"
    retry_s = 1.0
    watched: tuple[str, ...] = ()  # key prefixes whose changes matter; empty: none

    def __init__(self, mirror: Mirror | None = None) -> None:
        self._mirror = mirror
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        if self._mirror is not None:
            self._unsubscribe = self._mirror.subscribe(self._changed)
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.mark()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await cancel_and_wait([self._task])
        self._task = None
        await self.close()

    def mark(self) -> None:
        """Something this reconciler depends on changed: run a pass soon."""
        self._dirty.set()

    def _changed(self, changed: frozenset[str]) -> None:
        # an empty set is a snapshot that changed nothing: still a reason to look once more
        if not changed or any(key.startswith(self.watched) for key in changed):
            self.mark()

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._mirror is not None and not self._mirror.synced:
                continue
            try:
                await self.reconcile()
            except Exception as exc:  # a dead loop would stop converging for good
                if isinstance(exc, FerryError):
                    log.warning(f"{self.name} failed; retrying", extra={"fields": {"error": exc}})
                else:  # a bug, not the world: say so loudly, and still keep converging
                    log.exception(f"{self.name} crashed; retrying")
                self.failed()
                await asyncio.sleep(self.retry_s)
                self.mark()
            finally:
                self.passed()

    async def reconcile(self) -> None:
        """Make the world match the wanted state, computed afresh."""
        raise NotImplementedError

    def failed(self) -> None:
        """A pass failed: forget what was believed applied (the next pass rewrites it)."""

    def passed(self) -> None:
        """A pass ended, well or not."""

    async def close(self) -> None:
        """Release what the reconciler holds (after its loop stopped)."""
