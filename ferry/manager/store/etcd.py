"""The Store over a real etcd member, through etcd's gRPC API with mutual TLS.

Uses the protobuf stubs that ship with ``aetcd``; aetcd's own client has no TLS and drops the
revisions of transaction and watch responses, both of which Ferry needs.

Be aware: a watch ends with ``Unavailable`` when etcd restarts or compacts past the requested
revision; callers (the mirror) relist and watch again. Every call fails with ``Unavailable``,
never with ``asyncio.CancelledError``, when ``reconnect`` closes the channel under it: grpc.aio
cancels a closed channel's calls, and a task that let that through would end as if cancelled
(the manager's feed did, and its mirror froze for good; see ``_rpc``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from aetcd import rpc

from ferry.errors import NoLeader, NotFound, Unavailable
from ferry.manager.store import keys
from ferry.manager.store.base import Delete, Event, Expect, KeyValue, MemberStatus, Put

_TIMEOUT_S = 5.0
_STATUS_TIMEOUT_S = 1.0  # a local call of the member: slower means it is not answering
# A request (a write, or a linearizable read) that a follower forwarded to a leader that then
# died is lost, and etcd lets the caller wait for it until its request timeout (our _TIMEOUT_S
# first): the API stood still for 5 s after a leader's death. A request that has waited
# _SUSPECT_S (they take milliseconds) asks the member whether it has since seen another leader;
# once that leader has committed in its term (a linearizable read succeeds), the fate of every
# request of the old term is sealed and applied here, so its answer is due at once: after
# _SETTLE_S more it is given up as lost (a read is asked again, a write fails).
_SUSPECT_S = 0.25
_SETTLE_S = 0.3
_READ_TRIES = 2


class _Lost(Exception):
    """A request that went to a leader that died: no answer will ever come."""


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


@contextlib.contextmanager
def _rpc(what: str) -> Iterator[None]:
    """Ferry's errors for a call to etcd: NotFound or Unavailable (``_translate``).

    A call whose channel was closed (``EtcdStore.reconnect``) raises ``asyncio.CancelledError``
    (grpc.aio cancels every active call of a channel it closes), though nobody cancelled the
    task that awaits it. Such a call is a store that went away, Unavailable, so the caller
    retries as it does for any other; a CancelledError while the task itself is being cancelled
    (``Task.cancelling``) is that cancellation and goes on up."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise _translate(exc, what) from exc
    except grpc.aio.UsageError as exc:  # a call begun after the store was closed (a stop)
        raise Unavailable(f"cluster store unavailable ({what}): it was closed") from exc
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise
        raise Unavailable(
            f"cluster store unavailable ({what}): the connection was replaced (its TLS changed)"
        ) from None


class EtcdStore:
    def __init__(self, endpoint: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        self._endpoint = endpoint
        self._term = 0  # the highest raft term any answer of the member carried
        self._connect(ca_pem, cert_pem, key_pem)

    def _seen(self, header: Any) -> None:
        self._term = max(self._term, int(header.raft_term))

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
        etcd_member.py); calls and watches on the old channel end with Unavailable (``_rpc``), and
        their callers (the feed, the leader's loop) start again."""
        old = self._channel
        self._connect(ca_pem, cert_pem, key_pem)
        await old.close()

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._read(f"get {key}", rpc.RangeRequest(key=key.encode()))
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return KeyValue(key, kv.value, kv.mod_revision, kv.lease)

    async def check_quorum(self, timeout_s: float) -> None:
        # etcd serves a Range linearizably unless asked otherwise: it needs the leader's word
        request = rpc.RangeRequest(key=keys.CLUSTER.encode(), count_only=True)
        with _rpc("quorum read"):
            resp = await self._kv.Range(request, timeout=timeout_s)
        self._seen(resp.header)

    async def member_status(self) -> MemberStatus:
        with _rpc("member status"):
            resp = await self.maintenance.Status(rpc.StatusRequest(), timeout=_STATUS_TIMEOUT_S)
        self._term = max(self._term, int(resp.raftTerm))
        return MemberStatus(int(resp.header.member_id), int(resp.leader), int(resp.raftTerm))

    async def list_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        raw = prefix.encode()
        resp = await self._read(
            f"list {prefix}", rpc.RangeRequest(key=raw, range_end=prefix_end(raw))
        )
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
        with _rpc("commit"):
            try:
                resp = await self._unless_lost(self._kv.Txn(request, timeout=_TIMEOUT_S))
            except _Lost:
                raise Unavailable(
                    "cluster store unavailable (commit): its leader changed while this write "
                    "was on its way and no answer came: most likely it was not applied; try again"
                ) from None
        self._seen(resp.header)
        return resp.header.revision if resp.succeeded else None

    async def _read(self, what: str, request: Any) -> Any:
        """A linearizable Range; one lost with a leader that died is asked again (a read may
        be repeated, unlike a write)."""
        with _rpc(what):
            for _ in range(_READ_TRIES):
                try:
                    resp = await self._unless_lost(self._kv.Range(request, timeout=_TIMEOUT_S))
                except _Lost:
                    continue
                self._seen(resp.header)
                return resp
        raise Unavailable(f"cluster store unavailable ({what}): its leader kept changing")

    async def _unless_lost(self, call: Any) -> Any:
        """The answer of a request just sent. NoLeader (Docker's words) when it fails or is
        still waiting while the member knows no leader: the member lost its majority or an
        election is on, and nothing commits until a leader is back (as with Docker, a write
        that had reached a majority may still be applied by the next leader). _Lost once it is
        known lost with a leader that died (see _SUSPECT_S)."""
        term = self._term  # the member's term when the request left (0: none seen yet)
        answer = asyncio.ensure_future(call)
        try:
            while True:
                done, _ = await asyncio.wait({answer}, timeout=_SUSPECT_S)
                if done:
                    return await self._answer(answer)
                status = await self._status_or_none()
                if status is None:
                    continue
                if not status.has_leader:
                    raise NoLeader()
                if term and status.raft_term > term:
                    await self.check_quorum(_TIMEOUT_S)
                    done, _ = await asyncio.wait({answer}, timeout=_SETTLE_S)
                    if done:
                        return await self._answer(answer)
                    raise _Lost()
        finally:
            if not answer.done():
                call.cancel()
                answer.cancel()

    async def _answer(self, answer: asyncio.Future[Any]) -> Any:
        """A finished write's answer; its failure while the member knows no leader is NoLeader."""
        try:
            return answer.result()
        except grpc.aio.AioRpcError as exc:
            status = await self._status_or_none()
            if status is not None and not status.has_leader:
                raise NoLeader() from exc
            raise

    async def _status_or_none(self) -> MemberStatus | None:
        try:
            return await self.member_status()
        except Unavailable:  # a busy or dead member: no word either way
            return None

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        raw = prefix.encode()
        create = rpc.WatchCreateRequest(
            key=raw, range_end=prefix_end(raw), start_revision=start_revision
        )
        with _rpc(f"watch {prefix}"):  # creating the call fails on a closed store
            call = self._watch.Watch(iter([rpc.WatchRequest(create_request=create)]))
        try:
            with _rpc(f"watch {prefix}"):
                async for resp in call:
                    self._seen(resp.header)
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
        finally:
            call.cancel()

    async def grant_lease(self, ttl_s: int) -> int:
        with _rpc("grant lease"):
            resp = await self._lease.LeaseGrant(
                rpc.LeaseGrantRequest(TTL=ttl_s), timeout=_TIMEOUT_S
            )
        return int(resp.ID)

    async def refresh_lease(self, lease_id: int) -> bool:
        with _rpc("refresh lease"):  # creating the call fails on a closed store
            call = self._lease.LeaseKeepAlive(
                iter([rpc.LeaseKeepAliveRequest(ID=lease_id)]), timeout=_TIMEOUT_S
            )
        try:
            with _rpc("refresh lease"):
                async for reply in call:
                    return int(reply.TTL) > 0
        finally:
            call.cancel()
        return False

    async def revoke_lease(self, lease_id: int) -> None:
        with contextlib.suppress(NotFound), _rpc("revoke lease"):  # NotFound: expired already
            await self._lease.LeaseRevoke(rpc.LeaseRevokeRequest(ID=lease_id), timeout=_TIMEOUT_S)

    async def close(self) -> None:
        await self._channel.close()


def _op(op: Put | Delete) -> rpc.RequestOp:
    if isinstance(op, Put):
        put = rpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease_id)
        return rpc.RequestOp(request_put=put)
    raw = op.key.encode()
    delete = rpc.DeleteRangeRequest(key=raw, range_end=prefix_end(raw) if op.prefix else b"")
    return rpc.RequestOp(request_delete_range=delete)


@dataclass(frozen=True)
class StoreMember:
    """One etcd member: its name is its manager's node id (unset until it first starts)."""

    member_id: int
    name: str
    peer_urls: tuple[str, ...]
    learner: bool


class EtcdMembers:
    """etcd cluster membership (which managers hold a copy of the store)."""

    def __init__(self, store: EtcdStore) -> None:
        self._store = store  # its stubs change when it reconnects

    async def _members(self) -> list[Any]:
        with _rpc("list members"):
            resp = await self._store.cluster.MemberList(rpc.MemberListRequest(), timeout=_TIMEOUT_S)
        return list(resp.members)

    async def listing(self) -> list[StoreMember]:
        """Every member, learners included (``StoreMember.learner``)."""
        return [
            StoreMember(int(m.ID), str(m.name), tuple(m.peerURLs), bool(m.isLearner))
            for m in await self._members()
        ]

    async def all(self) -> list[tuple[int, str, list[str]]]:
        """(member id, name, peer URLs) of every member; a just-added member has no name yet."""
        return [(m.member_id, m.name, list(m.peer_urls)) for m in await self.listing()]

    async def add(self, peer_url: str, *, learner: bool = True) -> int:
        """Add a member; as a learner (no vote) by default, so that a member which never comes
        up cannot cost the cluster its quorum."""
        with _rpc(f"add member {peer_url}"):
            resp = await self._store.cluster.MemberAdd(
                rpc.MemberAddRequest(peerURLs=[peer_url], isLearner=learner), timeout=_TIMEOUT_S
            )
        return int(resp.member.ID)

    async def promote(self, member_id: int) -> None:
        """Make a learner a voting member (refused until it has caught up with the leader)."""
        with _rpc(f"promote member {member_id:x}"):
            await self._store.cluster.MemberPromote(
                rpc.MemberPromoteRequest(ID=member_id), timeout=_TIMEOUT_S
            )

    async def learners(self) -> list[tuple[int, list[str]]]:
        return [(m.member_id, list(m.peer_urls)) for m in await self.listing() if m.learner]

    async def remove(self, member_id: int) -> None:
        with _rpc(f"remove member {member_id:x}"):
            await self._store.cluster.MemberRemove(
                rpc.MemberRemoveRequest(ID=member_id), timeout=_TIMEOUT_S
            )
