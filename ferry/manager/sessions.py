"""Agent sessions: heartbeats that keep a node's liveness lease, and the state stream.

Liveness: each heartbeat refreshes the node's lease (TTL 6 s; agents beat every 2 s), and the
``sessions/<node>`` key lives on that lease. A node whose ferryd dies stops beating; etcd
deletes the key when the lease lapses and every view shows the node Down. Any manager can
refresh any lease, so an agent that fails over to another manager keeps its session.

Dispatch: a session stream is newline-delimited JSON. It opens with a snapshot of every streamed
key and the mirror's revision, then carries each change as it reaches this manager's mirror.
Values are the store's JSON documents, embedded verbatim (no re-encoding on the hot path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from dataclasses import replace

from ferry.errors import Forbidden
from ferry.manager.store import Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.manager.wire import HeartbeatReply
from ferry.model.codec import encode
from ferry.model.mirror import Entry, Mirror
from ferry.model.node import SESSION_TTL_S, NodeSession
from ferry.model.times import now_iso

STREAM_PING_S = 5.0


def _item(key: str, raw: bytes | None, revision: int) -> bytes:
    value = raw if raw is not None else b"null"
    return (
        b'{"k":'
        + json.dumps(key).encode()
        + b',"r":'
        + str(revision).encode()
        + b',"v":'
        + value
        + b"}"
    )


def _line(kind: str, revision: int, items: list[bytes]) -> bytes:
    head = b'{"t":"' + kind.encode() + b'","rev":' + str(revision).encode() + b',"items":['
    return head + b",".join(items) + b"]}\n"


class SessionHub:
    def __init__(self, store: Store, mirror: Mirror, view: ClusterView, manager_id: str) -> None:
        self._store = store
        self._mirror = mirror
        self._view = view
        self._manager_id = manager_id
        self._lease_lock = asyncio.Lock()
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End every open stream (the manager is stopping; agents reconnect elsewhere)."""
        self._closing.set()

    def check_member(self, node_id: str) -> None:
        node = self._view.node(node_id)
        if node is None:
            raise Forbidden(f"node {node_id} has been removed from the swarm")
        if node.left:
            raise Forbidden(f"node {node.hostname} has left the swarm")

    async def heartbeat(
        self,
        node_id: str,
        images: tuple[str, ...] = (),
        ports: tuple[str, ...] = (),
        wg_key: str = "",
    ) -> HeartbeatReply:
        self.check_member(node_id)
        node = self._view.node(node_id)
        # what the scheduler may place here, which host ports are taken there, and the key
        # encrypted overlays reach it with
        if node is not None and (node.images, node.ports, node.wg_key) != (images, ports, wg_key):
            # Only over the version read: a concurrent 'node update' must not be undone, nor a
            # 'node rm' undone by writing the node back. A lost race waits for the next beat.
            updated = replace(node, images=images, ports=ports, wg_key=wg_key)
            version = self._view.entity_version(keys.node(node_id))
            await self._store.commit(
                [Put(keys.node(node_id), encode(updated))], [Expect(keys.node(node_id), version)]
            )
        async with self._lease_lock:
            session = self._view.session(node_id)
            if session is None or not await self._store.refresh_lease(session.lease_id):
                lease_id = await self._store.grant_lease(SESSION_TTL_S)
                record = NodeSession(node_id, lease_id, self._manager_id, now_iso())
                await self._store.commit([Put(keys.session(node_id), encode(record), lease_id)])
        return HeartbeatReply(ttl_s=SESSION_TTL_S, managers=self._view.manager_addrs())

    async def stream(self, node_id: str) -> AsyncGenerator[bytes, None]:
        self.check_member(node_id)
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def on_change(changed: frozenset[str]) -> None:
            items = []
            for key in sorted(changed):
                if not keys.is_streamed(key):
                    continue
                entry = self._mirror.get(key)
                items.append(_item(key, entry.raw if entry else None, self._mirror.revision))
            if items:
                queue.put_nowait(_line("event", self._mirror.revision, items))

        unsubscribe = self._mirror.subscribe(on_change)
        try:
            snapshot: list[Entry] = self._mirror.snapshot(keys.is_streamed)
            yield _line(
                "snapshot",
                self._mirror.revision,
                [_item(e.key, e.raw, e.mod_revision) for e in snapshot],
            )
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        [getter, closing],
                        timeout=STREAM_PING_S,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if closing in done:
                        getter.cancel()
                        return
                    if getter in done:
                        yield getter.result()
                    else:
                        getter.cancel()
                        yield b'{"t":"ping"}\n'
            finally:
                closing.cancel()
        finally:
            unsubscribe()
