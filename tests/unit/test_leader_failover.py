"""Ferry's leader follows etcd's (issue 13): who takes office, who steps down, and the fence
that keeps a replaced leader from writing; a manager refuses at once while its member knows no
leader; a write lost with a dead etcd leader fails at once instead of hanging."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest
from aetcd import rpc

from ferry.errors import NoLeader, Unavailable
from ferry.manager.leader import LEASE_TTL_S, LeaderElection, take_office
from ferry.manager.quorum import QuorumWatch
from ferry.manager.store import Expect, MemberStatus, Put, Store, keys
from ferry.manager.store.etcd import EtcdStore
from ferry.manager.store.memory import MemoryStore
from ferry.manager.store.schema import LeaderRecord
from ferry.model.codec import decode
from tests.unit.conftest import Clock
from tests.unit.test_etcd_store import CREDENTIALS

FOLLOWER = MemberStatus(member_id=1, leader_id=2, raft_term=5)
LEADING = MemberStatus(member_id=1, leader_id=1, raft_term=5)
NO_LEADER = MemberStatus(member_id=1, leader_id=0, raft_term=5)


@pytest.mark.parametrize(
    ("status", "current", "expected"),
    [
        (LEADING, None, True),  # a free key
        (FOLLOWER, None, True),  # a free key, whoever leads etcd (its ferryd may be dead)
        (NO_LEADER, None, False),  # an election is on: no write would commit
        (LEADING, LeaderRecord("mgr2", "x", 4), True),  # taken in an older etcd term
        (LEADING, LeaderRecord("mgr2", "x", 0), True),  # taken by a follower
        (LEADING, LeaderRecord("mgr2", "x", 5), False),  # taken in this very term
        (FOLLOWER, LeaderRecord("mgr2", "x", 4), False),  # only etcd's leader takes over
        (NO_LEADER, LeaderRecord("mgr2", "x", 4), False),
    ],
)
def test_the_manager_whose_member_leads_etcd_takes_office_over_an_older_term(
    status: MemberStatus, current: LeaderRecord | None, expected: bool
) -> None:
    assert take_office(status, "mgr1", current) == expected


@dataclass
class Raft:
    """What every member says of etcd's leader (member ids 1, 2, 3)."""

    leader: int = 1
    term: int = 2


class Member:
    """One manager's view of a shared store: the store itself, and its member's own word."""

    def __init__(self, store: MemoryStore, raft: Raft, member_id: int) -> None:
        self._store = store
        self._raft = raft
        self.member_id = member_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def member_status(self) -> MemberStatus:
        return MemberStatus(self.member_id, self._raft.leader, self._raft.term)


class Changes:
    def __init__(self) -> None:
        self.seen: list[bool] = []

    async def __call__(self, leader: bool) -> None:
        self.seen.append(leader)


def managers(clock: Clock) -> tuple[MemoryStore, Raft, list[LeaderElection], list[Changes]]:
    store, raft = MemoryStore(clock), Raft()
    changes = [Changes() for _ in range(3)]
    elections = [
        LeaderElection(cast(Store, Member(store, raft, i + 1)), f"mgr{i + 1}", changes[i], clock)
        for i in range(3)
    ]
    return store, raft, elections, changes


async def record(store: MemoryStore) -> LeaderRecord:
    current = await store.get(keys.LEADER)
    assert current is not None
    return decode(LeaderRecord, current.value)


async def test_after_etcd_elects_another_member_its_manager_takes_office_without_a_lapse() -> None:
    clock = Clock()
    store, raft, (m1, m2, m3), changes = managers(clock)
    for m in (m1, m2, m3):
        await m.step()
    assert [c.seen for c in changes] == [[True], [], []]
    assert (await record(store)).node_id == "mgr1"
    assert (await record(store)).raft_term == 2
    # m1's ferryd and etcd die: m2's member wins etcd's election; no lease has lapsed
    raft.leader, raft.term = 2, 3
    for m in (m2, m3):
        await m.step()
    assert [c.seen for c in changes[1:]] == [[True], []]
    assert (await record(store)).node_id == "mgr2"
    assert (await record(store)).raft_term == 3
    # had m1 lived on unaware, its next look finds its lease revoked and the key another's
    clock.now += 0.1
    await m1.step()
    assert changes[0].seen == [True, False]


async def test_a_replaced_leader_that_has_not_noticed_yet_writes_nothing() -> None:
    clock = Clock()
    store, raft, (m1, m2, _), _ = managers(clock)
    await m1.step()
    fence = m1.term_revision
    raft.leader, raft.term = 2, 3
    await m2.step()
    assert m1.is_leader  # it has not looked again yet
    # what ServiceReconciler adds to each of its commits: m1's writes fail, m2's land
    late = await store.commit([Put(keys.task("t1"), b"{}")], [Expect(keys.LEADER, fence)])
    assert late is None
    now = await store.commit([Put(keys.task("t1"), b"{}")], [Expect(keys.LEADER, m2.term_revision)])
    assert now is not None


async def test_a_leader_whose_member_knows_no_leader_steps_down_and_nobody_takes_office() -> None:
    clock = Clock()
    store, raft, (m1, m2, m3), changes = managers(clock)
    await m1.step()
    raft.leader = 0  # m1 is cut off (or an election is on): its writes could not commit
    for m in (m1, m2, m3):
        await m.step()
    assert [c.seen for c in changes] == [[True, False], [], []]
    # the record stays until etcd's next leader takes over: no manager acts meanwhile
    assert (await record(store)).node_id == "mgr1"


async def test_a_free_key_taken_by_a_follower_passes_to_etcds_leader_once_its_ferryd_runs() -> None:
    """etcd's leader's ferryd was down (its lease lapsed): another manager takes the free key
    in term 0, and the manager of etcd's leader takes over as soon as it looks."""
    clock = Clock()
    store, _, (m1, m2, _), changes = managers(clock)
    await m2.step()
    assert changes[1].seen == [True]
    assert (await record(store)).raft_term == 0
    await m1.step()
    assert (await record(store)).node_id == "mgr1"
    clock.now += LEASE_TTL_S  # m2 checks its key and lease at its next refresh
    await m2.step()
    assert changes[1].seen == [True, False]


async def test_a_manager_refuses_at_once_while_its_member_knows_no_leader() -> None:
    clock = Clock()
    raft = Raft()
    watch = QuorumWatch(cast(Store, Member(MemoryStore(clock), raft, 1)), clock)
    await watch.observe()
    assert watch.has_quorum
    raft.leader = 0
    await watch.observe()
    assert not watch.has_quorum  # no read had to fail first, no STALE_S to wait
    raft.leader = 2
    await watch.observe()
    assert watch.has_quorum


class Call(asyncio.Future[Any]):
    """A gRPC call's stand-in: awaitable, cancellable."""


class KV:
    """etcd's KV service as the client sees it: each request gets the next of ``calls``."""

    def __init__(self, *calls: Call) -> None:
        self.calls = list(calls)

    def Txn(self, _request: Any, timeout: float) -> Call:  # gRPC's names
        return self.calls.pop(0)

    def Range(self, _request: Any, timeout: float) -> Call:
        return self.calls.pop(0)


class Member3(EtcdStore):
    """An etcd client whose member says ``status`` and which last saw raft term 3."""

    def __init__(self, status: MemberStatus, *calls: Call) -> None:
        super().__init__("unix:/nonexistent", *CREDENTIALS)
        self.status = status
        self.reads = 0
        self._term = 3
        self._kv = KV(*calls)

    async def member_status(self) -> MemberStatus:
        return self.status

    async def check_quorum(self, timeout_s: float) -> None:
        self.reads += 1


def answer(revision: int) -> Any:
    header = rpc.ResponseHeader(revision=revision, raft_term=4)
    return rpc.TxnResponse(header=header, succeeded=True)


def later(call: Call, after_s: float, value: Any) -> Call:
    asyncio.get_running_loop().call_later(after_s, call.set_result, value)
    return call


async def test_a_write_lost_with_a_dead_etcd_leader_fails_once_another_leader_commits() -> None:
    lost = Call()
    store = Member3(MemberStatus(1, 3, 4), lost)  # member 3 leads term 4 now
    try:
        with pytest.raises(Unavailable, match="its leader changed while this write was on"):
            await asyncio.wait_for(store.commit([Put(keys.task("t1"), b"{}")]), 3)
        assert store.reads == 1  # after the new leader's read: old terms' writes are settled
        assert lost.cancelled()
    finally:
        await store.close()


async def test_a_read_lost_with_a_dead_etcd_leader_is_asked_again_of_the_new_one() -> None:
    lost, again = Call(), Call()
    again.set_result(rpc.RangeResponse(header=rpc.ResponseHeader(revision=9, raft_term=4)))
    store = Member3(MemberStatus(1, 3, 4), lost, again)
    try:
        assert await asyncio.wait_for(store.get(keys.LEADER), 3) is None
        assert lost.cancelled()
    finally:
        await store.close()


async def test_a_slow_write_under_the_same_leader_is_waited_for() -> None:
    store = Member3(MemberStatus(1, 2, 3), later(Call(), 0.6, answer(7)))  # term 3 goes on
    try:
        assert await asyncio.wait_for(store.commit([Put(keys.task("t1"), b"{}")]), 3) == 7
        assert store.reads == 0
    finally:
        await store.close()


async def test_a_write_answered_while_the_new_leader_settles_is_not_given_up() -> None:
    store = Member3(MemberStatus(1, 3, 4), later(Call(), 0.35, answer(7)))
    try:
        assert await asyncio.wait_for(store.commit([Put(keys.task("t1"), b"{}")]), 3) == 7
    finally:
        await store.close()


async def test_a_write_in_flight_when_the_member_loses_its_leader_fails_with_dockers_words() -> (
    None
):
    """Quorum loss: the write fails at once with "The swarm does not have a leader", not after
    the store's timeout with the store's own words; a read likewise."""
    for request in ("commit", "get"):
        waiting = Call()
        store = Member3(MemberStatus(1, 0, 3), waiting)  # cut off: its member knows no leader
        try:
            call = (
                store.commit([Put(keys.task("t1"), b"{}")])
                if request == "commit"
                else store.get(keys.LEADER)
            )
            with pytest.raises(NoLeader, match="The swarm does not have a leader"):
                await asyncio.wait_for(call, 3)
            assert waiting.cancelled()
        finally:
            await store.close()


async def test_a_write_refused_while_the_member_knows_no_leader_fails_with_dockers_words() -> None:
    refused = Call()
    refused.set_exception(
        grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            "etcdserver: no leader",
        )
    )
    store = Member3(MemberStatus(1, 0, 3), refused)
    try:
        with pytest.raises(NoLeader):
            await store.commit([Put(keys.task("t1"), b"{}")])
    finally:
        await store.close()
