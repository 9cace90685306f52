"""The kernel thread: one thread that owns every netlink and nftables handle.

Serialising kernel work on one thread keeps pyroute2's thread affinity satisfied and makes the
order of kernel changes the order they were asked for; each call is a few netlink round trips,
so one thread keeps up with the event loop. Nothing here ever ``setns``es this thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class KernelThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
