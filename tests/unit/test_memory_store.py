import asyncio

from ferry.manager.store import Delete, Expect, Put
from ferry.manager.store.memory import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_an_expectation_that_fails_applies_nothing() -> None:
    store = MemoryStore()
    rev = await store.commit([Put("/a", b"1")])
    assert rev is not None
    assert await store.commit([Put("/a", b"2"), Put("/b", b"x")], [Expect("/a", rev - 1)]) is None
    assert (await store.get("/a")).value == b"1"  # type: ignore[union-attr]
    assert await store.get("/b") is None


async def test_create_if_absent_succeeds_once() -> None:
    store = MemoryStore()
    first = await store.commit([Put("/k", b"1")], [Expect("/k", 0)])
    second = await store.commit([Put("/k", b"2")], [Expect("/k", 0)])
    assert first is not None
    assert second is None


async def test_a_watch_delivers_one_transaction_as_one_batch() -> None:
    store = MemoryStore()
    _, rev = await store.list_prefix("/")
    batches = []

    async def follow() -> None:
        async for batch in store.watch("/p/", rev + 1):
            batches.append(batch)
            if len(batches) == 2:
                return

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    await store.commit([Put("/p/a", b"1"), Put("/p/b", b"2"), Put("/other", b"x")])
    await store.commit([Delete("/p/", prefix=True)])
    await asyncio.wait_for(task, 1)
    assert [e.key for e in batches[0]] == ["/p/a", "/p/b"]
    assert [(e.key, e.value) for e in batches[1]] == [("/p/a", None), ("/p/b", None)]


async def test_a_watch_replays_history_from_a_revision() -> None:
    store = MemoryStore()
    rev = await store.commit([Put("/p/a", b"1")])
    await store.commit([Put("/p/b", b"2")])
    assert rev is not None
    stream = store.watch("/p/", rev)
    first = await anext(stream)
    second = await anext(stream)
    assert [e.key for e in first + second] == ["/p/a", "/p/b"]


async def test_keys_on_a_lease_vanish_when_it_is_not_refreshed() -> None:
    clock = Clock()
    store = MemoryStore(clock)
    lease = await store.grant_lease(6)
    await store.commit([Put("/s/n1", b"x", lease)])
    clock.now += 5
    assert await store.refresh_lease(lease)
    clock.now += 5
    assert await store.get("/s/n1") is not None
    clock.now += 2
    assert await store.get("/s/n1") is None
    assert not await store.refresh_lease(lease)
