"""What Ferry needs from a cluster store, and nothing more.

A store holds bytes under string keys with etcd's semantics: every write gets a cluster-wide
revision, a transaction applies its operations only if every expectation holds, a watch replays
events from a revision, and a lease deletes its keys when it is not refreshed in time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    lease_id: int = 0


@dataclass(frozen=True)
class Event:
    """A change of one key; ``value`` is None when the key was deleted."""

    key: str
    value: bytes | None
    mod_revision: int


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease_id: int = 0


@dataclass(frozen=True)
class Delete:
    key: str
    prefix: bool = False


@dataclass(frozen=True)
class Expect:
    """A transaction precondition: the key's mod revision, 0 meaning the key must not exist."""

    key: str
    mod_revision: int


@dataclass(frozen=True)
class MemberStatus:
    """What this manager's own store member says of the store's leader (etcd's Status RPC,
    answered locally, without the majority): member ids are etcd's, ``leader_id`` 0 while the
    member knows no leader (an election is on, or it is cut off from the majority);
    ``raft_term`` grows with every election."""

    member_id: int
    leader_id: int
    raft_term: int

    @property
    def leads(self) -> bool:
        return self.leader_id != 0 and self.leader_id == self.member_id

    @property
    def has_leader(self) -> bool:
        return self.leader_id != 0


class Store(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def member_status(self) -> MemberStatus:
        """This manager's member's view of the store's leader; raises Unavailable when the
        member does not answer."""
        ...

    async def check_quorum(self, timeout_s: float) -> None:
        """A read the store's majority must confirm (linearizable); raises Unavailable when it
        cannot within ``timeout_s`` (this member is cut off, or too few members are up)."""
        ...

    async def list_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """All keys under ``prefix`` and the store revision they were read at."""
        ...

    async def commit(
        self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()
    ) -> int | None:
        """Apply ``ops`` atomically if every expectation holds: the new revision, else None."""
        ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Events under ``prefix`` from ``start_revision`` on (inclusive), until cancelled, in
        batches: all events of one transaction arrive together."""
        ...

    async def grant_lease(self, ttl_s: int) -> int: ...

    async def refresh_lease(self, lease_id: int) -> bool:
        """Keep a lease alive; False when it has already expired."""
        ...

    async def revoke_lease(self, lease_id: int) -> None: ...

    async def close(self) -> None: ...


async def put(store: Store, key: str, value: bytes, lease_id: int = 0) -> int:
    revision = await store.commit([Put(key, value, lease_id)])
    assert revision is not None  # no expectations, cannot fail
    return revision


async def delete(store: Store, key: str, *, prefix: bool = False) -> None:
    await store.commit([Delete(key, prefix)])
