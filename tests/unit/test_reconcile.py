"""The reconciler loop: marks coalesce, and a failed pass, even a crashed one, is retried."""

import asyncio

import pytest

from ferry.errors import Unavailable
from ferry.reconcile import Reconciler


class Flaky(Reconciler):
    retry_s = 0.01

    def __init__(self, failures: list[Exception]) -> None:
        super().__init__()
        self.failures = failures
        self.passes = 0
        self.forgotten = 0
        self.done = asyncio.Event()

    async def reconcile(self) -> None:
        self.passes += 1
        if self.failures:
            raise self.failures.pop(0)
        self.done.set()

    def failed(self) -> None:
        self.forgotten += 1


@pytest.mark.parametrize("error", [Unavailable("etcd is away"), KeyError("a bug")])
async def test_a_failed_or_crashed_pass_is_retried_with_a_clean_slate(error: Exception) -> None:
    loop = Flaky([error])
    loop.start()
    try:
        await asyncio.wait_for(loop.done.wait(), 2)
    finally:
        await loop.stop()
    assert (loop.passes, loop.forgotten) == (2, 1)


async def test_marks_made_during_a_pass_coalesce_into_one_more() -> None:
    loop = Flaky([])
    loop.start()
    try:
        await asyncio.wait_for(loop.done.wait(), 2)
        for _ in range(5):
            loop.mark()
        await asyncio.sleep(0.05)
    finally:
        await loop.stop()
    assert loop.passes == 2
