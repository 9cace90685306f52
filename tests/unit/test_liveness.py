"""Node liveness after a change of leader: a grace period before anything is declared down
(issue 8, input 3), and a restarted leader that takes office again through its own lease."""

from __future__ import annotations

import pytest

from ferry.manager.leader import LEASE_TTL_S, LeaderElection
from ferry.manager.store import Put, keys
from ferry.manager.store.memory import MemoryStore
from ferry.manager.store.schema import LeaderRecord
from ferry.model.codec import decode, encode
from ferry.model.node import (
    LEADER_GRACE_S,
    Node,
    NodeSession,
    NodeStatus,
    Role,
    node_status,
)
from tests.unit.conftest import Clock

NODE = Node("n1", "h1", Role.WORKER, "10.99.0.11")
SESSION = NodeSession("n1", 7, "mgr", "2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("session", "leader_since", "now", "expected"),
    [
        (SESSION, 100.0, 100.0, NodeStatus.READY),
        (SESSION, None, 100.0, NodeStatus.READY),
        (None, 100.0, 100.0, NodeStatus.UNKNOWN),  # a new leader: not reported in yet
        (None, 100.0, 100.0 + LEADER_GRACE_S - 0.1, NodeStatus.UNKNOWN),
        (None, 100.0, 100.0 + LEADER_GRACE_S, NodeStatus.DOWN),
        (None, None, 100.0, NodeStatus.UNKNOWN),  # no leader: nobody declares anything
    ],
)
def test_a_node_without_a_session_is_down_only_after_the_leaders_grace(
    session: NodeSession | None, leader_since: float | None, now: float, expected: NodeStatus
) -> None:
    assert node_status(NODE, session, leader_since, now) == expected


def test_a_node_that_left_or_was_removed_is_down_whatever_its_session() -> None:
    left = Node("n1", "h1", Role.WORKER, "10.99.0.11", left=True)
    assert node_status(left, SESSION, 100.0, 100.0) == NodeStatus.DOWN
    assert node_status(None, None, 100.0, 100.0) == NodeStatus.DOWN


class Changes:
    def __init__(self) -> None:
        self.seen: list[bool] = []

    async def __call__(self, leader: bool) -> None:
        self.seen.append(leader)


async def test_a_restarted_leader_takes_office_again_through_its_own_lease() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    lease = await store.grant_lease(LEASE_TTL_S)
    old = LeaderRecord("mgr1", "2026-01-01T00:00:00Z")
    await store.commit([Put(keys.LEADER, encode(old), lease)])
    changes = Changes()
    election = LeaderElection(store, "mgr1", changes)
    await election.step()
    assert changes.seen == [True]
    current = await store.get(keys.LEADER)
    assert current is not None
    assert current.lease_id == lease
    record = decode(LeaderRecord, current.value)
    assert record.node_id == "mgr1"
    assert record.since > old.since  # a new term: the grace period starts again


async def test_another_managers_leader_key_is_never_adopted() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    lease = await store.grant_lease(LEASE_TTL_S)
    # taken in the store's current raft term (the memory store's member leads term 1)
    await store.commit([Put(keys.LEADER, encode(LeaderRecord("mgr2", "x", 1)), lease)])
    changes = Changes()
    await LeaderElection(store, "mgr1", changes).step()
    assert changes.seen == []


async def test_a_lapsed_lease_of_this_node_is_not_adopted_and_the_key_is_won_afresh() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    lease = await store.grant_lease(LEASE_TTL_S)
    await store.commit([Put(keys.LEADER, encode(LeaderRecord("mgr1", "x")), lease)])
    clock.now += LEASE_TTL_S + 1
    changes = Changes()
    election = LeaderElection(store, "mgr1", changes)
    await election.step()
    assert changes.seen == [True]
    current = await store.get(keys.LEADER)
    assert current is not None
    assert current.lease_id != lease
