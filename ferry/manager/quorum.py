"""Whether this manager's copy of the store is part of a majority: it answers for the swarm
only while it is.

A manager cut off from the other managers (or left alone after they died) still holds a mirror
of the store, frozen at the moment it lost them: its nodes look Ready, its leader looks alive.
Serving that as the truth is how users come to trust stale state. So every CHECK_S this watch
asks the store for a read only a majority can confirm (linearizable, bounded by PROBE_S); after
STALE_S without one, the manager refuses the swarm's calls with Docker's message
(``NoLeader``) until a majority answers again. Only a read that failed counts: a slow one (a
loaded machine delays the read, or this loop) is no sign of a lost majority, and refusing
then made a lone manager answer "no leader" under load.

Faster, every STATUS_S: the member's own word (etcd's Status, answered locally). While it knows
no leader — an election is on, or it is cut off and its election timer ran out (etcd's leader
steps down after an election timeout without a majority's heartbeats: check-quorum) — no write
can commit, so the manager refuses at once, as Docker does while its Raft has no leader, rather
than letting writes hang until the store's timeout. A Status that fails or is slow says
nothing: a dead or busy member falls to the reads above. Be aware: a one-manager swarm is
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
STATUS_S = 0.2  # the member's word on its leader: local, cheap, and within etcd's heartbeats
# while it knows no leader: answer again within a moment of the election's end (writes are
# refused meanwhile, and clients retry)
LEADERLESS_S = 0.05
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
        self._leaderless = False  # the member's last word: it knows no leader

    @property
    def has_quorum(self) -> bool:
        if self._leaderless:
            return False
        return not self._failed or self._clock() - self._confirmed_at <= STALE_S

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def observe(self) -> None:
        """The member's word on its leader (what the loop asks every STATUS_S)."""
        try:
            status = await self._store.member_status()
        except Exception as exc:  # a busy or dead member: the reads decide (see probe)
            if not isinstance(exc, FerryError):
                log.exception("member status crashed")
            return
        if status.has_leader == self._leaderless:
            self._leaderless = not status.has_leader
            log.log(
                logging.WARNING if self._leaderless else logging.INFO,
                "the store member knows no leader: refusing swarm calls"
                if self._leaderless
                else "the store member has a leader again",
                extra=kv(term=status.raft_term),
            )

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
        next_read = self._clock()
        while True:
            await self.observe()
            # while the member knows no leader its word decides: a read would only hang
            if not self._leaderless and (self._clock() >= next_read or not self.has_quorum):
                await self.probe()
                next_read = self._clock() + (CHECK_S if self.has_quorum else RECHECK_S)
            await asyncio.sleep(LEADERLESS_S if self._leaderless else STATUS_S)
