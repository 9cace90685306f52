"""Whether this manager's copy of the store is part of a majority: it answers for the swarm
only while it is.

A manager cut off from the other managers (or left alone after they died) still holds a mirror
of the store, frozen at the moment it lost them: its nodes look Ready, its leader looks alive.
Serving that as the truth is how users come to trust stale state. So every CHECK_S this watch
asks the store for a read only a majority can confirm (linearizable, bounded by PROBE_S); after
STALE_S without one, the manager refuses the swarm's calls with Docker's message
(``NoLeader``) until a majority answers again. Only a read that failed counts: a slow one (a
loaded machine delays the read, or this loop) is no sign of a lost majority, and refusing
then made a lone manager answer "no leader" under load. Be aware: a one-manager swarm is
always its own majority.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError
from ferry.manager.store import Store

log = logging.getLogger("ferry.manager.quorum")

CHECK_S = 1.0
RECHECK_S = 0.2  # while refusing: answer again within a moment of the majority's return
PROBE_S = 2.0
STALE_S = 3.0


class QuorumWatch:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._confirmed_at = clock()  # a manager starts only once its store answered
        self._task: asyncio.Task[None] | None = None
        self._lost = False
        self._failed = False  # a read failed since the last confirmed one

    @property
    def has_quorum(self) -> bool:
        return not self._failed or self._clock() - self._confirmed_at <= STALE_S

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def probe(self) -> None:
        """One check (what the loop runs every CHECK_S)."""
        try:
            await self._store.check_quorum(PROBE_S)
        except Exception as exc:  # any failed read, a bug included: never a stopped watch
            if not isinstance(exc, FerryError):
                log.exception("quorum check crashed")
            self._failed = True
            if not self._lost and not self.has_quorum:
                self._lost = True
                log.warning("the store has no quorum: refusing swarm calls", extra=kv(error=exc))
            return
        self._confirmed_at = self._clock()
        self._failed = False
        if self._lost:
            self._lost = False
            log.info("the store has a quorum again")

    async def _run(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(CHECK_S if self.has_quorum else RECHECK_S)
