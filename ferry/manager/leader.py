"""Leader election among managers, on an etcd lease: one manager runs the orchestrator.

The leader holds ``leader`` with a short lease and refreshes it; if it dies the key expires and
another manager takes it. The loop is level-triggered: whoever finds the key missing tries a
create-if-absent, and exactly one succeeds.

A restarted ferryd that finds the key still naming its own node (its lease not yet lapsed) takes
office again at once through that lease, instead of waiting it out. Either way the record says
when this term began (``since``): nodes get a grace period from then to report in before
anything is declared down (``model.node.node_status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError
from ferry.manager.store import Expect, Put, Store, keys
from ferry.manager.store.schema import LeaderRecord
from ferry.model.codec import decode, encode
from ferry.model.times import now_iso

log = logging.getLogger("ferry.manager.leader")

LEASE_TTL_S = 5
REFRESH_S = 1.5


class LeaderElection:
    def __init__(
        self,
        store: Store,
        node_id: str,
        on_change: Callable[[bool], Awaitable[None]],
    ) -> None:
        self._store = store
        self._node_id = node_id
        self._on_change = on_change
        self.is_leader = False
        self._lease_id = 0
        self._task: asyncio.Task[None] | None = None
        # the record this node wrote when it took office, and the store revision of that write:
        # the leader acts only once its mirror shows this record (see ServiceReconciler)
        self.term: LeaderRecord | None = None
        self.term_revision = 0

    async def first_step(self) -> int:
        """One election step, before the loop starts and before this manager serves anyone: a
        restarted leader takes office again here, so no reader ever sees its previous term's
        record with this term's (lapsed) sessions. The store revision of the new term's record,
        0 when this node did not take office."""
        try:
            await self._try_acquire()
        except FerryError as exc:
            log.warning("leader election step failed", extra=kv(error=exc))
        return self.term_revision if self.is_leader else 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        if self.is_leader:
            await self._set(False)
            with contextlib.suppress(FerryError):  # the lease expires on its own
                await self._store.revoke_lease(self._lease_id)

    async def _set(self, leader: bool) -> None:
        if leader != self.is_leader:
            self.is_leader = leader
            log.info("leadership changed", extra=kv(leader=leader, node=self._node_id))
            await self._on_change(leader)

    async def _run(self) -> None:
        while True:
            try:
                if self.is_leader:
                    if not await self._store.refresh_lease(self._lease_id):
                        await self._set(False)
                        continue
                else:
                    await self._try_acquire()
            except FerryError as exc:
                log.warning("leader election step failed", extra=kv(error=exc))
                await self._set(False)
            except Exception:  # a dead loop would hold office past its lease, or never run
                log.exception("leader election step crashed; stepping down and retrying")
                await self._set(False)
            await asyncio.sleep(REFRESH_S if self.is_leader else 0.5)

    async def _try_acquire(self) -> None:
        current = await self._store.get(keys.LEADER)
        if current is not None:
            await self._try_adopt(current.value, current.mod_revision, current.lease_id)
            return
        lease_id = await self._store.grant_lease(LEASE_TTL_S)
        record = LeaderRecord(self._node_id, now_iso())
        revision = await self._store.commit(
            [Put(keys.LEADER, encode(record), lease_id)], [Expect(keys.LEADER, 0)]
        )
        if revision is None:
            await self._store.revoke_lease(lease_id)
            return
        self._lease_id = lease_id
        self.term, self.term_revision = record, revision
        await self._set(True)

    async def _try_adopt(self, raw: bytes, version: int, lease_id: int) -> None:
        """Take office through the lease a previous run of this node left (if it still lives)."""
        if not lease_id or decode(LeaderRecord, raw).node_id != self._node_id:
            return
        if not await self._store.refresh_lease(lease_id):
            return
        record = LeaderRecord(self._node_id, now_iso())  # a new term: the grace starts again
        revision = await self._store.commit(
            [Put(keys.LEADER, encode(record), lease_id)], [Expect(keys.LEADER, version)]
        )
        if revision is None:
            return
        log.info("leadership taken over from this node's previous run")
        self._lease_id = lease_id
        self.term, self.term_revision = record, revision
        await self._set(True)
