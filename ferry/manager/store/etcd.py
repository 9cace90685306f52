"""The Store over a real etcd member, through etcd's gRPC API with mutual TLS.

Uses the protobuf stubs that ship with ``aetcd``; aetcd's own client has no TLS and drops the
revisions of transaction and watch responses, both of which Ferry needs.

Be aware: a watch ends with ``Unavailable`` when etcd restarts or compacts past the requested
revision; callers (the mirror) relist and watch again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from aetcd import rpc

from ferry.errors import NotFound, Unavailable
from ferry.manager.store import keys
from ferry.manager.store.base import Delete, Event, Expect, KeyValue, Put

_TIMEOUT_S = 5.0


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with ``prefix`` (etcd's range_end)."""
    as_list = bytearray(prefix)
    for i in range(len(as_list) - 1, -1, -1):
        if as_list[i] < 0xFF:
            as_list[i] += 1
            return bytes(as_list[: i + 1])
    return b"\0"


def _translate(exc: grpc.aio.AioRpcError, what: str) -> Exception:
    detail = exc.details() or str(exc.code())
    if exc.code() == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what}: {detail}")
    return Unavailable(f"cluster store unavailable ({what}): {detail}")


class EtcdStore:
    def __init__(self, endpoint: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        self._endpoint = endpoint
        self._connect(ca_pem, cert_pem, key_pem)

    def _connect(self, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
        )
        self._channel = grpc.aio.secure_channel(self._endpoint, credentials)
        self._kv = rpc.KVStub(self._channel)
        self._watch = rpc.WatchStub(self._channel)
        self._lease = rpc.LeaseStub(self._channel)
        self.cluster = rpc.ClusterStub(self._channel)
        self.maintenance = rpc.MaintenanceStub(self._channel)

    async def reconnect(self, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        """Talk to etcd with other credentials from now on (its TLS changed, see
        etcd_member.py); calls and watches on the old channel end with Unavailable, and their
        callers (the feed) start again."""
        old = self._channel
        self._connect(ca_pem, cert_pem, key_pem)
        await old.close()

    async def get(self, key: str) -> KeyValue | None:
        try:
            resp = await self._kv.Range(rpc.RangeRequest(key=key.encode()), timeout=_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, f"get {key}") from exc
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return KeyValue(key, kv.value, kv.mod_revision, kv.lease)

    async def check_quorum(self, timeout_s: float) -> None:
        # etcd serves a Range linearizably unless asked otherwise: it needs the leader's word
        request = rpc.RangeRequest(key=keys.CLUSTER.encode(), count_only=True)
        try:
            await self._kv.Range(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "quorum read") from exc

    async def list_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        raw = prefix.encode()
        request = rpc.RangeRequest(key=raw, range_end=prefix_end(raw))
        try:
            resp = await self._kv.Range(request, timeout=_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, f"list {prefix}") from exc
        items = [KeyValue(kv.key.decode(), kv.value, kv.mod_revision, kv.lease) for kv in resp.kvs]
        return items, resp.header.revision

    async def commit(
        self, ops: Sequence[Put | Delete], expect: Sequence[Expect] = ()
    ) -> int | None:
        compares = [
            rpc.Compare(
                key=e.key.encode(),
                result=rpc.Compare.EQUAL,
                target=rpc.Compare.MOD,
                mod_revision=e.mod_revision,
            )
            for e in expect
        ]
        request = rpc.TxnRequest(compare=compares, success=[_op(op) for op in ops])
        try:
            resp = await self._kv.Txn(request, timeout=_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "commit") from exc
        return resp.header.revision if resp.succeeded else None

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        raw = prefix.encode()
        create = rpc.WatchCreateRequest(
            key=raw, range_end=prefix_end(raw), start_revision=start_revision
        )
        call = self._watch.Watch(iter([rpc.WatchRequest(create_request=create)]))
        try:
            async for resp in call:
                if resp.compact_revision:
                    raise Unavailable(f"watch compacted at revision {resp.compact_revision}")
                if resp.canceled:
                    raise Unavailable(f"watch cancelled by the store: {resp.cancel_reason}")
                batch = [
                    Event(
                        ev.kv.key.decode(),
                        None if ev.type == rpc.Event.DELETE else ev.kv.value,
                        ev.kv.mod_revision,
                    )
                    for ev in resp.events
                ]
                if batch:
                    yield batch
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, f"watch {prefix}") from exc
        finally:
            call.cancel()

    async def grant_lease(self, ttl_s: int) -> int:
        try:
            resp = await self._lease.LeaseGrant(
                rpc.LeaseGrantRequest(TTL=ttl_s), timeout=_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "grant lease") from exc
        return int(resp.ID)

    async def refresh_lease(self, lease_id: int) -> bool:
        call = self._lease.LeaseKeepAlive(iter([rpc.LeaseKeepAliveRequest(ID=lease_id)]))
        try:
            async for reply in call:
                return int(reply.TTL) > 0
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "refresh lease") from exc
        finally:
            call.cancel()
        return False

    async def revoke_lease(self, lease_id: int) -> None:
        try:
            await self._lease.LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease_id), timeout=_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise _translate(exc, "revoke lease") from exc

    async def close(self) -> None:
        await self._channel.close()


def _op(op: Put | Delete) -> rpc.RequestOp:
    if isinstance(op, Put):
        put = rpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease_id)
        return rpc.RequestOp(request_put=put)
    raw = op.key.encode()
    delete = rpc.DeleteRangeRequest(key=raw, range_end=prefix_end(raw) if op.prefix else b"")
    return rpc.RequestOp(request_delete_range=delete)


class EtcdMembers:
    """etcd cluster membership (which managers hold a copy of the store)."""

    def __init__(self, store: EtcdStore) -> None:
        self._store = store  # its stubs change when it reconnects

    async def _members(self) -> list[Any]:
        try:
            resp = await self._store.cluster.MemberList(rpc.MemberListRequest(), timeout=_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "list members") from exc
        return list(resp.members)

    async def all(self) -> list[tuple[int, str, list[str]]]:
        """(member id, name, peer URLs) of every member; a just-added member has no name yet."""
        return [(m.ID, m.name, list(m.peerURLs)) for m in await self._members()]

    async def add(self, peer_url: str, *, learner: bool = True) -> int:
        """Add a member; as a learner (no vote) by default, so that a member which never comes
        up cannot cost the cluster its quorum."""
        try:
            resp = await self._store.cluster.MemberAdd(
                rpc.MemberAddRequest(peerURLs=[peer_url], isLearner=learner), timeout=_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, f"add member {peer_url}") from exc
        return int(resp.member.ID)

    async def promote(self, member_id: int) -> None:
        """Make a learner a voting member (refused until it has caught up with the leader)."""
        try:
            await self._store.cluster.MemberPromote(
                rpc.MemberPromoteRequest(ID=member_id), timeout=_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, f"promote member {member_id:x}") from exc

    async def learners(self) -> list[tuple[int, list[str]]]:
        return [(m.ID, list(m.peerURLs)) for m in await self._members() if m.isLearner]

    async def remove(self, member_id: int) -> None:
        try:
            await self._store.cluster.MemberRemove(
                rpc.MemberRemoveRequest(ID=member_id), timeout=_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, f"remove member {member_id:x}") from exc
