"""The etcd store's calls fail as Ferry's errors when the store reconnects under them.

``EtcdStore.reconnect`` (a manager's etcd moving to another TLS phase) closes the old gRPC
channel, and grpc.aio cancels every call still active on it: awaiting one raises
``asyncio.CancelledError`` in a task nobody cancelled. Let through, it ended the manager's feed
as if stopped, its mirror froze, and the store upgrade waited for it forever. Here the "etcd" is a
unix socket that accepts and never answers, so a call stays active until the channel closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ferry.errors import Unavailable
from ferry.manager import ca
from ferry.manager.feed import StoreFeed
from ferry.manager.store import Put, keys
from ferry.manager.store.etcd import EtcdMembers, EtcdStore
from ferry.manager.store.schema import MANAGER_TYPES
from ferry.model.mirror import Mirror

_CA = ca.create_ca("cluster0", ca.STORE_CA_NAME)
_KEY = ca.new_key_pem()
_CERT = ca.sign_store_member(_CA, ca.make_csr(_KEY), "node0", "cluster0", ["127.0.0.1"])
CREDENTIALS = (_CA.cert_pem, _CERT, _KEY)


class SilentStore:
    """A unix socket that takes connections and never says a word; ``connected`` is set once
    a client has connected (its call is then waiting on the TLS handshake)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.connected = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def _accept(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.connected.set()

    async def wait_connected(self) -> None:
        await asyncio.wait_for(self.connected.wait(), 4.0)  # below the store's call timeout

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[SilentStore]:
        server = await asyncio.start_unix_server(self._accept, self.path)
        try:
            yield self
        finally:
            for writer in self._writers:
                writer.close()
            server.close()
            await server.wait_closed()


@pytest.fixture
async def silent() -> AsyncIterator[SilentStore]:
    with tempfile.TemporaryDirectory(prefix="ferry-etcd-") as tmp:  # unix paths are short
        async with SilentStore(str(Path(tmp) / "etcd.sock")).serving() as server:
            yield server


def _store(silent: SilentStore) -> EtcdStore:
    return EtcdStore(f"unix:{silent.path}", *CREDENTIALS)


async def _first_batch(store: EtcdStore) -> Any:
    async for batch in store.watch(keys.ROOT, 1):
        return batch
    return None


CALLS: dict[str, Callable[[EtcdStore], Awaitable[Any]]] = {
    "get": lambda s: s.get(keys.CLUSTER),
    "list": lambda s: s.list_prefix(keys.ROOT),
    "commit": lambda s: s.commit([Put(keys.CLUSTER, b"{}")]),
    "quorum read": lambda s: s.check_quorum(4.0),
    "watch": _first_batch,
    "grant lease": lambda s: s.grant_lease(10),
    "refresh lease": lambda s: s.refresh_lease(1),
    "revoke lease": lambda s: s.revoke_lease(1),
    "list members": lambda s: EtcdMembers(s).all(),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_call_active_when_the_store_reconnects_fails_unavailable_not_cancelled(
    silent: SilentStore, call: str
) -> None:
    store = _store(silent)
    try:
        active = asyncio.ensure_future(CALLS[call](store))
        await silent.wait_connected()
        await store.reconnect(*CREDENTIALS)
        with pytest.raises(Unavailable, match="the connection was replaced"):
            await active
    finally:
        await store.close()


async def test_a_caller_that_is_cancelled_is_still_cancelled(silent: SilentStore) -> None:
    store = _store(silent)
    try:
        active = asyncio.ensure_future(store.get(keys.CLUSTER))
        await silent.wait_connected()
        active.cancel()
        with pytest.raises(asyncio.CancelledError):
            await active
        assert active.cancelled()
    finally:
        await store.close()


async def test_the_feed_keeps_following_the_store_after_it_reconnects(
    silent: SilentStore,
) -> None:
    store = _store(silent)
    feed = StoreFeed(store, Mirror(MANAGER_TYPES))
    feed.start()
    try:
        await silent.wait_connected()  # the feed's first list is active
        silent.connected.clear()
        await store.reconnect(*CREDENTIALS)
        await silent.wait_connected()  # ...and it lists again, over the new channel
        assert feed._task is not None and not feed._task.done()
    finally:
        await feed.stop()
        await store.close()
