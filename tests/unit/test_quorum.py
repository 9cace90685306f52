"""A manager whose store has no majority refuses the swarm's calls (issue 8, input 7)."""

from __future__ import annotations

from typing import cast

from ferry.errors import Unavailable
from ferry.manager.quorum import STALE_S, QuorumWatch
from ferry.manager.store import Store
from tests.unit.conftest import Clock


class CutOff:
    """A store member that answers only while it is part of a majority."""

    def __init__(self) -> None:
        self.majority = True

    async def check_quorum(self, _timeout_s: float) -> None:
        if not self.majority:
            raise Unavailable("context deadline exceeded")


async def test_a_manager_cut_off_from_the_majority_stops_answering_for_the_swarm() -> None:
    clock = Clock()
    store = CutOff()
    watch = QuorumWatch(cast(Store, store), clock)
    assert watch.has_quorum
    store.majority = False
    clock.now += 1
    await watch.probe()
    assert watch.has_quorum  # one missed read is not yet a lost majority
    clock.now += STALE_S
    await watch.probe()
    assert not watch.has_quorum
    store.majority = True
    await watch.probe()
    assert watch.has_quorum


async def test_a_slow_read_is_not_a_lost_majority() -> None:
    """A loaded machine can delay the read (or the loop that makes it) past STALE_S: only a
    failed read counts, so a lone manager never answers "no leader" for being slow."""
    clock = Clock()
    store = CutOff()
    watch = QuorumWatch(cast(Store, store), clock)
    clock.now += 10 * STALE_S  # no read completed meanwhile, none failed
    assert watch.has_quorum
    store.majority = False
    await watch.probe()  # the first failure, long after the last confirmed read
    assert not watch.has_quorum
