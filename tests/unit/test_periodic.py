"""``Periodic``: a loop that never dies of its step and says a cause once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ferry.aio import Periodic
from ferry.errors import Unavailable


async def test_a_failing_step_is_said_once_per_cause_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[BaseException | None] = [
        Unavailable("not yet"), Unavailable("not yet"), RuntimeError("bug"), None,
        Unavailable("not yet"),
    ]  # fmt: skip
    ran = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls > len(outcomes):
            ran.set()
            return
        outcome = outcomes[calls - 1]
        if outcome is not None:
            raise outcome

    log = logging.getLogger("test.periodic")
    loop = Periodic(step, 0.001, log, waiting="waiting", crashed="crashed")
    with caplog.at_level(logging.WARNING, logger="test.periodic"):
        loop.start()
        await asyncio.wait_for(ran.wait(), 5)
        await loop.stop()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    # "not yet" twice in a row: once; the crash with its traceback; after a success, again
    assert said == [("WARNING", "waiting"), ("ERROR", "crashed"), ("WARNING", "waiting")]
    assert caplog.records[1].exc_info is not None
