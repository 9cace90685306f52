"""A manager's long-lived loops (the store feed, the leader election, the quorum watch) outlive
an error they did not expect: each logs it and carries on, as reconcilers do. A loop that died
silently froze a manager's view of the store (the CI failure of issue 8's trust test)."""

from __future__ import annotations

import asyncio
from typing import cast

from ferry.manager.feed import StoreFeed
from ferry.manager.leader import LeaderElection
from ferry.manager.quorum import STALE_S, QuorumWatch
from ferry.manager.store import Put, Store, keys
from ferry.manager.store.memory import MemoryStore
from ferry.manager.store.schema import MANAGER_TYPES
from ferry.model.mirror import Mirror
from tests.unit.conftest import Clock


class Faulty(MemoryStore):
    """A store whose next call of ``method`` raises what no caller expects (a bug's error)."""

    def __init__(self, method: str) -> None:
        super().__init__(Clock())
        self.faulty = method

    def _fault(self, method: str) -> None:
        if self.faulty == method:
            self.faulty = ""
            raise RuntimeError(f"{method} broke")

    async def list_prefix(self, prefix: str):  # type: ignore[no-untyped-def]
        self._fault("list_prefix")
        return await super().list_prefix(prefix)

    async def get(self, key: str):  # type: ignore[no-untyped-def]
        self._fault("get")
        return await super().get(key)

    async def check_quorum(self, timeout_s: float) -> None:
        self._fault("check_quorum")


async def test_the_store_feed_lists_again_after_an_unexpected_error() -> None:
    store = Faulty("list_prefix")
    feed = StoreFeed(store, Mirror(MANAGER_TYPES))
    feed.start()
    try:
        revision = await store.commit([Put(keys.store_tls("mgr1"), b"1")])
        assert revision is not None
        await feed.wait_for(revision, timeout_s=3)
    finally:
        await feed.stop()


async def test_the_leader_election_runs_on_after_an_unexpected_error() -> None:
    store = Faulty("get")
    changes: list[bool] = []

    async def changed(leader: bool) -> None:
        changes.append(leader)

    election = LeaderElection(store, "mgr1", changed)
    election.start()
    try:
        for _ in range(40):
            if election.is_leader:
                break
            await asyncio.sleep(0.1)
        assert election.is_leader and changes == [True]
    finally:
        await election.stop()


async def test_a_quorum_check_that_breaks_counts_as_a_failed_read() -> None:
    clock = Clock()
    store = Faulty("check_quorum")
    watch = QuorumWatch(cast(Store, store), clock)
    clock.now += STALE_S + 1
    await watch.probe()  # no exception: the watch's loop lives on
    assert not watch.has_quorum
    await watch.probe()
    assert watch.has_quorum
