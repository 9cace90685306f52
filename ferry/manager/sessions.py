"""Agent sessions: heartbeats that keep a node's liveness lease, and the state stream.

Liveness: each heartbeat refreshes the node's lease (TTL 15 s, as Swarm; agents beat every
2 s), and the ``sessions/<node>`` key lives on that lease. A node whose ferryd dies stops
beating; etcd deletes the key when the lease lapses and every view shows the node Down. Any
manager can refresh any lease, so an agent that fails over to another manager keeps its
session.

Dispatch: a session stream is newline-delimited JSON. It opens with a snapshot of every streamed
key and the mirror's revision, then carries each change as it reaches this manager's mirror.
A manager's stream embeds the store's JSON documents verbatim. A worker's carries each value
as ``projection.share`` allows that node: its own tasks whole, the rest cut down to what its
data plane reads, other nodes' requests not at all (Docker's dispatcher gives a worker its
tasks and their dependencies only). Projections that are the same for every worker are encoded
once per value and revision, not once per stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from dataclasses import replace

from ferry.errors import Forbidden
from ferry.manager import projection
from ferry.manager.projection import Share
from ferry.manager.root_ca import issuer_of
from ferry.manager.store import Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.manager.wire import HeartbeatReply
from ferry.model.codec import encode
from ferry.model.mirror import Entry, Mirror
from ferry.model.node import SESSION_TTL_S, NodeSession, Role
from ferry.model.root_rotation import NodeTLS, wanted_trust
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
        # key -> (mod revision, bytes): a value's projection shared by every worker's stream
        self._networking: dict[str, tuple[int, bytes]] = {}
        mirror.subscribe(self._forget_deleted)

    def close(self) -> None:
        """End every open stream (the manager is stopping; agents reconnect elsewhere)."""
        self._closing.set()

    def check_member(self, node_id: str) -> None:
        node = self._view.node(node_id)
        if node is None:
            raise Forbidden(
                f"node {node_id} has been removed from the swarm: run 'docker swarm leave "
                "--force' on it, then join again with a current token"
            )
        if node.left:
            raise Forbidden(f"node {node.hostname} has left the swarm")

    async def heartbeat(
        self,
        node_id: str,
        images: tuple[str, ...] = (),
        ports: tuple[str, ...] = (),
        wg_key: str = "",
        tls: NodeTLS | None = None,
    ) -> HeartbeatReply:
        self.check_member(node_id)
        node = self._view.node(node_id)
        # what the scheduler may place here, which host ports are taken there, the key
        # encrypted overlays reach it with, and its TLS state (a root rotation waits for it)
        reported = (images, ports, wg_key, tls or (node.tls if node else NodeTLS()))
        if node is not None and (node.images, node.ports, node.wg_key, node.tls) != reported:
            # Only over the version read: a concurrent 'node update' must not be undone, nor a
            # 'node rm' undone by writing the node back. A lost race waits for the next beat.
            updated = replace(node, images=images, ports=ports, wg_key=wg_key, tls=reported[3])
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
        return HeartbeatReply(
            ttl_s=SESSION_TTL_S,
            managers=self._view.manager_addrs(),
            role=node.wanted_role.value if node is not None else "",
            **self._tls_wanted(),
        )

    def _tls_wanted(self) -> dict[str, str]:
        """What every node is to trust, and whose certificate it is to hold (a root CA
        rotation moves both; ``model/root_rotation.py``)."""
        cluster = self._view.cluster()
        if cluster is None:
            return {}
        rotation = cluster.root_rotation
        root = rotation.ca_cert_pem if rotation and rotation.signing else cluster.ca_cert_pem
        issuer = issuer_of(root.encode())
        return {
            "trust_pem": wanted_trust(cluster.ca_cert_pem, rotation),
            "issuer_subject": issuer.subject,
            "issuer_key": issuer.key,
        }

    def _forget_deleted(self, changed: frozenset[str]) -> None:
        for key in changed:
            if key in self._networking and self._mirror.get(key) is None:
                del self._networking[key]

    def is_manager(self, node_id: str, role: str) -> bool:
        """A manager's stream is whole: its certificate says so and so does the store."""
        node = self._view.node(node_id)
        return role == Role.MANAGER.value and node is not None and node.role == Role.MANAGER

    def _value(self, entry: Entry, node_id: str) -> bytes | None:
        """What worker ``node_id`` gets of ``entry`` (JSON bytes), None: nothing."""
        how = projection.share(entry.key, entry.obj, node_id)
        if how == Share.WHOLE:
            return bytes(entry.raw)
        if how == Share.NONE:
            return None
        if how == Share.NETWORKING:
            cached = self._networking.get(entry.key)
            if cached is None or cached[0] != entry.mod_revision:
                cached = (entry.mod_revision, encode(projection.project(entry.obj, how)))
                self._networking[entry.key] = cached
            return cached[1]
        return encode(projection.project(entry.obj, how))

    def _snapshot(self, node_id: str, whole: bool) -> bytes:
        entries: list[Entry] = self._mirror.snapshot(keys.is_streamed)
        items = []
        for entry in entries:
            value = entry.raw if whole else self._value(entry, node_id)
            if value is not None:
                items.append(_item(entry.key, value, entry.mod_revision))
        return _line("snapshot", self._mirror.revision, items)

    def _event(self, changed: frozenset[str], node_id: str, whole: bool) -> bytes | None:
        items = []
        revision = self._mirror.revision
        for key in sorted(changed):
            if not keys.is_streamed(key) or not (whole or projection.key_visible(key, node_id)):
                continue
            entry = self._mirror.get(key)
            if entry is None:
                items.append(_item(key, None, revision))
                continue
            value = entry.raw if whole else self._value(entry, node_id)
            # None: withheld now (it could not be decoded), so the node drops an older copy
            items.append(_item(key, value, revision))
        return _line("event", revision, items) if items else None

    async def stream(self, node_id: str, role: str) -> AsyncGenerator[bytes, None]:
        """The session stream of node ``node_id``, whose certificate names ``role``: whole for
        a manager, projected for a worker (see the module notes). Raises Forbidden for a node
        that is no member."""
        self.check_member(node_id)
        whole = self.is_manager(node_id, role)
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def on_change(changed: frozenset[str]) -> None:
            line = self._event(changed, node_id, whole)
            if line is not None:
                queue.put_nowait(line)

        unsubscribe = self._mirror.subscribe(on_change)
        try:
            yield self._snapshot(node_id, whole)
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
