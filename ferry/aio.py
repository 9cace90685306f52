"""asyncio helpers used across the daemon."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[object] | asyncio.Task[None] | None],
) -> None:
    """Cancel tasks and wait until each has finished (its ``finally`` blocks have run)."""
    pending = [t for t in tasks if t is not None]
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
