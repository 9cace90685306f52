"""Keeps the manager's Mirror equal to the store: list once, then follow a watch; relist on any
break (etcd restart, compaction). ``wait_for`` gives API handlers read-your-writes."""

from __future__ import annotations

import asyncio
import logging

from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError, Unavailable
from ferry.manager.store import Store, keys
from ferry.model.mirror import Mirror

log = logging.getLogger("ferry.manager.feed")


class StoreFeed:
    def __init__(self, store: Store, mirror: Mirror) -> None:
        self._store = store
        self._mirror = mirror
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        mirror.subscribe(self._advanced)

    def _advanced(self, _changed: frozenset[str]) -> None:
        revision = self._mirror.revision
        waiting = []
        for wanted, future in self._waiters:
            if wanted <= revision:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((wanted, future))
        self._waiters = waiting

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait([self._task])

    async def _run(self) -> None:
        delay_s = 0.1
        while True:
            try:
                items, revision = await self._store.list_prefix(keys.ROOT)
                self._mirror.reset(((kv.key, kv.value, kv.mod_revision) for kv in items), revision)
                delay_s = 0.1
                async for batch in self._store.watch(keys.ROOT, revision + 1):
                    self._mirror.apply((e.key, e.value, e.mod_revision) for e in batch)
            except FerryError as exc:
                log.warning("store feed interrupted", extra=kv(error=exc, retry_s=delay_s))
            except Exception:  # a dead feed would freeze this manager's view for good
                log.exception("store feed crashed; listing again")
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 2.0)

    async def wait_for(self, revision: int, timeout_s: float = 5.0) -> None:
        """Wait until the mirror has seen ``revision`` (a write this manager just made)."""
        if self._mirror.revision >= revision:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((revision, future))
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError as exc:
            raise Unavailable("cluster store is lagging; try again") from exc
