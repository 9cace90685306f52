"""An in-memory Store with etcd's semantics, for unit tests and the in-process cluster model.

Be aware: leases expire only when the store is touched or ``expire_leases`` is called, against
an injectable clock, so tests control time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from ferry.manager.store.base import Delete, Event, Expect, KeyValue, MemberStatus, Put


@dataclass
class _Lease:
    ttl_s: int
    deadline: float
    keys: set[str] = field(default_factory=set)


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, KeyValue] = {}
        self._history: list[Event] = []
        self._revision = 1
        self._leases: dict[int, _Lease] = {}
        self._next_lease = 1000
        self._watchers: list[tuple[str, asyncio.Queue[list[Event]]]] = []
        self._pending: list[Event] = []

    @property
    def revision(self) -> int:
        return self._revision

    async def get(self, key: str) -> KeyValue | None:
        self.expire_leases()
        return self._data.get(key)

    async def check_quorum(self, timeout_s: float) -> None:
        """One member in memory: always its own majority."""

    async def member_status(self) -> MemberStatus:
        """One member in memory: always its own leader, in its first term."""
        return MemberStatus(member_id=1, leader_id=1, raft_term=1)

    async def list_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        self.expire_leases()
        items = [kv for key, kv in sorted(self._data.items()) if key.startswith(prefix)]
        return items, self._revision

    async def commit(
        self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()
    ) -> int | None:
        self.expire_leases()
        for exp in expect:
            current = self._data.get(exp.key)
            if (current.mod_revision if current else 0) != exp.mod_revision:
                return None
        for op in ops:
            if isinstance(op, Put) and op.lease_id and op.lease_id not in self._leases:
                raise KeyError(f"lease {op.lease_id} not found")
        self._revision += 1
        for op in ops:
            if isinstance(op, Put):
                self._set(op.key, op.value, op.lease_id)
            else:
                keys = [k for k in self._data if k.startswith(op.key)] if op.prefix else [op.key]
                for key in keys:
                    self._remove(key)
        self._flush()
        return self._revision

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        queue: asyncio.Queue[list[Event]] = asyncio.Queue()
        old = [
            e
            for e in self._history
            if e.mod_revision >= start_revision and e.key.startswith(prefix)
        ]
        for revision in sorted({e.mod_revision for e in old}):
            queue.put_nowait([e for e in old if e.mod_revision == revision])
        entry = (prefix, queue)
        self._watchers.append(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(entry)

    async def grant_lease(self, ttl_s: int) -> int:
        self._next_lease += 1
        self._leases[self._next_lease] = _Lease(ttl_s, self._clock() + ttl_s)
        return self._next_lease

    async def refresh_lease(self, lease_id: int) -> bool:
        self.expire_leases()
        lease = self._leases.get(lease_id)
        if lease is None:
            return False
        lease.deadline = self._clock() + lease.ttl_s
        return True

    async def revoke_lease(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is None or not lease.keys:
            return
        self._revision += 1
        for key in sorted(lease.keys):
            self._remove(key)
        self._flush()

    async def close(self) -> None:
        return None

    def expire_leases(self) -> None:
        now = self._clock()
        for lease_id in [i for i, lease in self._leases.items() if lease.deadline <= now]:
            lease = self._leases.pop(lease_id)
            if lease.keys:
                self._revision += 1
                for key in sorted(lease.keys):
                    self._remove(key)
                self._flush()

    def _set(self, key: str, value: bytes, lease_id: int) -> None:
        old = self._data.get(key)
        if old is not None and old.lease_id and old.lease_id in self._leases:
            self._leases[old.lease_id].keys.discard(key)
        self._data[key] = KeyValue(key, value, self._revision, lease_id)
        if lease_id:
            self._leases[lease_id].keys.add(key)
        self._emit(Event(key, value, self._revision))

    def _remove(self, key: str) -> None:
        old = self._data.pop(key, None)
        if old is None:
            return
        if old.lease_id in self._leases:
            self._leases[old.lease_id].keys.discard(key)
        self._emit(Event(key, None, self._revision))

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        self._pending.append(event)

    def _flush(self) -> None:
        """Deliver the events of one revision to each watcher as one batch."""
        pending, self._pending = self._pending, []
        for prefix, queue in self._watchers:
            batch = [e for e in pending if e.key.startswith(prefix)]
            if batch:
                queue.put_nowait(batch)
