"""Leader election among managers: the manager whose etcd member leads etcd runs the orchestrator.

Design notes. etcd already elects a leader (Raft, with its own timeouts: ``etcd_member.py``);
Ferry's leader follows it instead of holding a second, slower election of its own. Ferry's
leader is the holder of the ``leader`` key: a LeaderRecord naming the node, when its term began
(``since``: nodes get a grace period from then to report in before anything is declared down,
``model.node.node_status``) and the etcd term (``raft_term``) it was taken in.

- Taking office: every POLL_S each manager asks its own member (etcd's Status, answered locally)
  who leads. The manager whose member leads etcd at term T takes the key at once unless the
  record was taken at term T or later, in a transaction that expects the record it read: of two
  managers racing, one wins, and a record's term only grows. It then revokes its predecessor's
  lease, so a predecessor that missed the change learns it at its next refresh.
- The key is bound to its holder's lease (LEASE_TTL_S, refreshed every REFRESH_S): it lapses if
  the holder's ferryd dies while its etcd lives on (ferryd alone crashed or restarts), and then
  any manager takes the free key; one whose member does not lead etcd writes term 0, so etcd's
  leader takes over as soon as its ferryd runs again.
- Stepping down: once the key no longer holds this manager's record, its lease is gone, or its
  member knows no leader (an election is on, or it is cut off from the majority: it could not
  write anyway, and the majority may be choosing another leader meanwhile).
- Fencing: stepping down is learnt a moment late (a poll), so the orchestrator's writes also
  expect the record's mod revision (``term_revision``, see ServiceReconciler): once another
  manager took office, they fail. There is never more than one acting leader.
- A restarted ferryd that finds the key still naming its own node (its lease alive) takes
  office again through that lease at once instead of waiting it out, in a new term.

Why not a lease alone (Ferry's earlier design): after etcd's leader dies, a lease lapses only
after etcd's election plus the whole TTL again (etcd extends every lease when its leader
changes, by its election timeout), ~7.5 s here; following etcd's leader, a new leader takes
office one poll after etcd's own election (benchmarks/managers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError
from ferry.manager.store import Expect, KeyValue, MemberStatus, Put, Store, keys
from ferry.manager.store.schema import LeaderRecord
from ferry.model.codec import decode, encode
from ferry.model.times import now_iso

log = logging.getLogger("ferry.manager.leader")

# The holder's lease only tells whether its ferryd lives (the record's raft term says who should
# lead): a TTL of three refreshes outlasts a loaded machine's late refresh, and a dead ferryd
# whose etcd lives on is replaced within about LEASE_TTL_S.
LEASE_TTL_S = 5
REFRESH_S = 1.5
# Status is a local call of the member (no Raft round): ten a second cost nothing, and a new
# leader takes office within a poll of etcd's election (which takes 1.1-1.5 s here).
POLL_S = 0.1


def take_office(status: MemberStatus, node_id: str, current: LeaderRecord | None) -> bool:
    """Whether a manager whose member says ``status`` should take the ``leader`` key holding
    ``current`` (None: the key is free), its own record aside (that one is adopted)."""
    if not status.has_leader:
        return False  # an election is on or this member is cut off: no write would commit
    if current is None:
        return True
    return status.leads and current.node_id != node_id and current.raft_term < status.raft_term


def record_term(status: MemberStatus) -> int:
    """The raft term a new record carries: etcd's term when this member leads it, else 0, so
    that etcd's leader takes over as soon as its ferryd runs (see ``take_office``)."""
    return status.raft_term if status.leads else 0


def keep_office(status: MemberStatus) -> bool:
    """Whether the leader stays in office by its member's word (the key is checked apart)."""
    return status.has_leader


class LeaderElection:
    def __init__(
        self,
        store: Store,
        node_id: str,
        on_change: Callable[[bool], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._node_id = node_id
        self._on_change = on_change
        self._clock = clock
        self.is_leader = False
        self._lease_id = 0
        # when this manager last read the key (a leader: confirmed its record and lease), and
        # in which raft term
        self._checked_at = 0.0
        self._checked_term = 0
        self._task: asyncio.Task[None] | None = None
        # the record this node wrote when it took office, and the store revision of that write:
        # the leader acts only once its mirror shows this record, and its orchestrator's writes
        # expect it (see ServiceReconciler)
        self.term: LeaderRecord | None = None
        self.term_revision = 0

    async def first_step(self) -> int:
        """One election step, before the loop starts and before this manager serves anyone: a
        restarted leader takes office again here, so no reader ever sees its previous term's
        record with this term's (lapsed) sessions. The store revision of the new term's record,
        0 when this node did not take office."""
        try:
            await self.step()
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
                await self.step()
            except FerryError as exc:
                log.warning("leader election step failed", extra=kv(error=exc))
                await self._set(False)
            except Exception:  # a dead loop would hold office past its lease, or never run
                log.exception("leader election step crashed; stepping down and retrying")
                await self._set(False)
            await asyncio.sleep(POLL_S)

    async def step(self) -> None:
        """One look at the member and, where it matters, the key (what the loop runs)."""
        status = await self._store.member_status()
        if self.is_leader:
            await self._keep(status)
        else:
            await self._try_acquire(status)

    async def _keep(self, status: MemberStatus) -> None:
        if not keep_office(status):
            log.warning("the store has no leader: stepping down", extra=kv(node=self._node_id))
            await self._set(False)
            return
        now = self._clock()
        if status.raft_term == self._checked_term and now - self._checked_at < REFRESH_S:
            return
        current = await self._store.get(keys.LEADER)
        if current is None or current.mod_revision != self.term_revision:
            log.warning("another manager took office", extra=kv(node=self._node_id))
            await self._set(False)
        elif not await self._store.refresh_lease(self._lease_id):
            await self._set(False)
        else:
            self._checked_at, self._checked_term = now, status.raft_term

    async def _try_acquire(self, status: MemberStatus) -> None:
        # the key is read (a linearizable read: a Raft round) when this member leads etcd or
        # its term changed, else every REFRESH_S, for a key whose holder's ferryd died
        now = self._clock()
        looked = status.raft_term == self._checked_term and now - self._checked_at < REFRESH_S
        if not status.has_leader or (looked and not status.leads):
            return
        self._checked_at, self._checked_term = now, status.raft_term
        current = await self._store.get(keys.LEADER)
        record = decode(LeaderRecord, current.value) if current is not None else None
        if current is not None and record is not None and record.node_id == self._node_id:
            await self._try_adopt(current, status)
            return
        if not take_office(status, self._node_id, record):
            return
        lease_id = await self._store.grant_lease(LEASE_TTL_S)
        if not await self._commit(current, lease_id, status):
            await self._store.revoke_lease(lease_id)
            return
        if current is not None and current.lease_id:  # the predecessor learns at its next check
            with contextlib.suppress(FerryError):
                await self._store.revoke_lease(current.lease_id)
        await self._set(True)

    async def _try_adopt(self, current: KeyValue, status: MemberStatus) -> None:
        """Take office through the lease a previous run of this node left (if it still lives)."""
        if not status.has_leader or not current.lease_id:
            return
        if not await self._store.refresh_lease(current.lease_id):
            return
        if await self._commit(current, current.lease_id, status):
            log.info("leadership taken over from this node's previous run")
            await self._set(True)

    async def _commit(self, current: KeyValue | None, lease_id: int, status: MemberStatus) -> bool:
        """Write a new term's record expecting ``current``; True when it is this node's now."""
        record = LeaderRecord(self._node_id, now_iso(), record_term(status))  # the grace restarts
        revision = await self._store.commit(
            [Put(keys.LEADER, encode(record), lease_id)],
            [Expect(keys.LEADER, current.mod_revision if current is not None else 0)],
        )
        if revision is None:
            return False
        self._lease_id = lease_id
        self.term, self.term_revision = record, revision
        self._checked_at, self._checked_term = self._clock(), status.raft_term
        return True
