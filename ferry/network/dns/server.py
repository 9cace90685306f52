"""The embedded DNS server: one per ferryd, answering 127.0.0.11:53 inside every container.

Design notes. Each attached container gets a UDP and a TCP socket bound *inside its network
namespace* (opened by a short-lived thread, see :mod:`ferry.kernel.sockets`; they sit on a free
port of 127.0.0.11 that port 53 is redirected to, so 53 stays free for the container's own
servers) and served by the
one event loop, which never leaves ferryd's namespace. The answer to a question is decided once,
by calling ``lookup``/``reverse`` with the asking container's key, and kept as wire bytes
(:class:`wire.Template`) in that container's cache under the lower-cased question; every later
identical question is answered by a label walk, a dict hit and three slices joined, with no
message objects. ``invalidate()`` drops every cache, so the next question calls the callbacks
again; cached answers never expire on their own.

What is answered here, class IN only: A from ``lookup``; PTR for ``d.c.b.a.in-addr.arpa`` from
``reverse``; any other type for a name ``lookup`` knows gets NOERROR without answers, so stub
resolvers fall back to A at once; a name ``lookup`` knows with no address right now gets
NXDOMAIN, whatever the type. Everything else is forwarded (:mod:`ferry.network.dns.forward`), or
REFUSED at once when there are no upstreams.

Questions can be held (``hold``/``release``): after a restart of ferryd the swarm's names are
not known until the network agent's first pass; a question asked meanwhile waits (bounded) and
is answered then, rather than getting NXDOMAIN for a name that exists.

Be aware: ``lookup`` and ``reverse`` run synchronously on the event loop, on a cache miss only;
they must be quick and must not raise (an exception is a bug: the loop's exception handler
reports it, that query goes unanswered and a TCP asker's connection is closed; the sockets keep
serving). An address or name they return that cannot be encoded is logged and answered SERVFAIL.
Attaching and detaching are serialised.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ferry.aio import cancel_and_wait
from ferry.errors import InvalidArgument
from ferry.kernel import sockets
from ferry.network.dns import wire
from ferry.network.dns.forward import Forwarder

Lookup = Callable[[str, str], tuple[str, ...] | None]
ReverseLookup = Callable[[str, str], str | None]
_Decide = Callable[[str, wire.Query], wire.Template | None]
_Respond = Callable[[bytes], None]

log = logging.getLogger("ferry.dns")

_CACHE_ENTRIES_MAX = 4096  # per container: one asking for random names must not grow ferryd
_TCP_CONNECTIONS_MAX = 64  # per container
_TCP_IDLE_S = 10.0  # RFC 7766 suggests seconds, not minutes, for an idle client connection
_HELD_MAX = 1024  # questions kept while held; past it they are dropped (stub resolvers retry)


class _Gate:
    """While closed, work is kept (bounded) and run in order when it opens."""

    def __init__(self) -> None:
        self.closed = False
        self._held: list[Callable[[], None]] = []

    def defer(self, work: Callable[[], None]) -> None:
        if len(self._held) < _HELD_MAX:
            self._held.append(work)

    def open(self) -> None:
        self.closed = False
        held, self._held = self._held, []
        for work in held:
            work()


class DnsServer:
    def __init__(
        self,
        lookup: Lookup,
        reverse: ReverseLookup,
        upstreams: list[str],
        ttl_s: int = 600,
        *,
        forward_timeout_s: float = 2.0,
        upstream_port: int = 53,
    ) -> None:
        self._lookup = lookup
        self._reverse = reverse
        self._ttl_s = ttl_s
        self._forwarder = Forwarder(upstreams, forward_timeout_s, upstream_port)
        self._attachments: dict[str, _Attachment] = {}
        self._lock = asyncio.Lock()
        self._gate = _Gate()

    def hold(self) -> None:
        """Keep questions unanswered until ``release`` (the names are not known yet)."""
        self._gate.closed = True

    def release(self) -> None:
        """Answer the questions held, and every later one at once (idempotent)."""
        self._gate.open()

    @property
    def holding(self) -> bool:
        return self._gate.closed

    @property
    def attached(self) -> frozenset[str]:
        return frozenset(self._attachments)

    async def attach(self, key: str, netns: Path) -> None:
        """Answer 127.0.0.11:53 (UDP and TCP) inside the namespace at ``netns`` for ``key``.

        Replaces an earlier attachment of ``key``; if opening the new sockets fails (KernelError:
        no such namespace, address in use), ``key`` is left detached.
        """
        async with self._lock:
            await self._detach_locked(key)  # the old sockets hold the address: free it first
            udp, tcp = await _open_sockets(netns)
            await self._serve_locked(key, udp, tcp)

    async def attach_sockets(self, key: str, udp: socket.socket, tcp: socket.socket) -> None:
        """Serve already-bound sockets for ``key`` (what ``attach`` does once it has them; tests
        hand in loopback sockets). The server owns the sockets from here on."""
        async with self._lock:
            await self._detach_locked(key)
            await self._serve_locked(key, udp, tcp)

    async def detach(self, key: str) -> None:
        """Close ``key``'s sockets, connections and pending forwards (idempotent)."""
        async with self._lock:
            await self._detach_locked(key)

    def invalidate(self) -> None:
        """Drop every cached answer (call on the event loop's thread, like every method)."""
        for attachment in self._attachments.values():
            attachment.cache.clear()

    async def close(self) -> None:
        async with self._lock:
            for key in list(self._attachments):
                await self._detach_locked(key)

    async def _serve_locked(self, key: str, udp: socket.socket, tcp: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        attachment = _Attachment(key, self._decide, self._forwarder, self._gate)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(attachment), sock=udp
            )
            attachment.udp = transport
            attachment.tcp_server = await loop.create_server(
                lambda: _TcpConnection(attachment), sock=tcp
            )
        except BaseException:
            # Not carried on: what was opened is closed before the error goes up.
            await attachment.close()
            udp.close()
            tcp.close()
            raise
        self._attachments[key] = attachment

    async def _detach_locked(self, key: str) -> None:
        attachment = self._attachments.pop(key, None)
        if attachment is not None:
            await attachment.close()

    def _decide(self, key: str, query: wire.Query) -> wire.Template | None:
        """Our reply to ``query`` from ``key``, or None when it must be forwarded."""
        if query.opcode != wire.OPCODE_QUERY:
            return wire.build_template(query, wire.NOTIMP, authoritative=False)
        if query.edns is not None and query.edns.version != 0:
            return wire.build_template(query, wire.BADVERS, authoritative=False)
        if query.qclass == wire.CLASS_IN:
            template = self._answer(key, query)
            if template is not None:
                return template
        if self._forwarder.enabled:
            return None
        return wire.build_template(query, wire.REFUSED, authoritative=False)

    def _answer(self, key: str, query: wire.Query) -> wire.Template | None:
        ipv4 = wire.ipv4_of_reverse_name(query.qname) if query.qtype == wire.TYPE_PTR else None
        if ipv4 is not None:
            return self._answer_reverse(key, query, ipv4)
        addrs = self._lookup(key, query.qname)
        if addrs is None:
            return None
        if not addrs:
            return wire.build_template(query, wire.NXDOMAIN)
        if query.qtype != wire.TYPE_A:
            return wire.build_template(query, wire.NOERROR)  # NODATA: the name has only A
        try:
            records = tuple(wire.a_record(addr, self._ttl_s) for addr in addrs)
        except ValueError as exc:
            return self._bad_record(key, query, exc)
        return wire.build_template(query, wire.NOERROR, records)

    def _answer_reverse(self, key: str, query: wire.Query, ipv4: str) -> wire.Template | None:
        target = self._reverse(key, ipv4)
        if target is None:
            return None
        try:
            record = wire.ptr_record(target, self._ttl_s)
        except InvalidArgument as exc:
            return self._bad_record(key, query, exc)
        return wire.build_template(query, wire.NOERROR, (record,))

    def _bad_record(self, key: str, query: wire.Query, exc: Exception) -> wire.Template:
        # A record the callbacks gave cannot be encoded: a bug above us. The asker gets SERVFAIL
        # (cached like any answer, so the log line repeats only after the next invalidate()).
        log.error(
            "dns: cannot answer %s for %r asked by %s: %s", query.qtype, query.qname, key, exc
        )
        return wire.build_template(query, wire.SERVFAIL, authoritative=False)


class _Attachment:
    """One container's sockets, answer cache, connections and pending forwards."""

    def __init__(self, key: str, decide: _Decide, forwarder: Forwarder, gate: _Gate) -> None:
        self.key = key
        self.gate = gate
        self.cache: dict[bytes, wire.Template] = {}
        self.udp: asyncio.DatagramTransport | None = None
        self.udp_closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tcp_server: asyncio.Server | None = None
        self.connections: set[asyncio.Transport] = set()
        self._decide = decide
        self._forwarder = forwarder
        self._forwards: set[asyncio.Task[None]] = set()

    def answer(self, packet: bytes) -> bytes | wire.Query | None:
        """The hot path: a reply, the parsed query when it must be forwarded, None to drop."""
        found = wire.cache_key(packet)
        if found is not None:
            template = self.cache.get(found[0])
            if template is not None:
                return template.render(packet, found[1])
        try:
            query = wire.parse_query(packet)
        except wire.MalformedPacket:
            return None
        template = self._decide(self.key, query)
        if template is None:
            return query
        if found is not None:  # only plain queries have a key; others are rare, so not cached
            if len(self.cache) >= _CACHE_ENTRIES_MAX:
                self.cache.clear()
            self.cache[found[0]] = template
        return template.render(packet, query.question_end)

    def forward(
        self, packet: bytes, query: wire.Query, respond: _Respond, *, over_tcp: bool
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._relay(packet, query, respond, over_tcp))
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)

    async def _relay(
        self, packet: bytes, query: wire.Query, respond: _Respond, over_tcp: bool
    ) -> None:
        respond(await self._forwarder.forward(packet, query, over_tcp=over_tcp))

    async def close(self) -> None:
        if self.tcp_server is not None:
            self.tcp_server.close()
        for connection in list(self.connections):
            connection.close()
        await cancel_and_wait(list(self._forwards))
        if self.udp is not None:
            self.udp.close()
            # The transport closes its socket on a later loop turn: wait, so a re-attach can bind.
            await self.udp_closed
        if self.tcp_server is not None:
            await self.tcp_server.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, attachment: _Attachment) -> None:
        self._attachment = attachment
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self._attachment.gate.closed:
            self._attachment.gate.defer(lambda: self.datagram_received(data, addr))
            return
        result = self._attachment.answer(data)
        if isinstance(result, bytes):
            self._send(data, result, addr)
        elif result is not None:
            self._attachment.forward(
                data, result, lambda reply: self._send(data, reply, addr), over_tcp=False
            )

    def _send(self, packet: bytes, reply: bytes, addr: tuple[str | Any, int]) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if len(reply) > wire.MAX_UDP_BYTES:
            query = wire.parse_query(packet)  # rare (only long answers): parse for the limit
            if len(reply) > query.udp_limit():
                reply = wire.truncated(reply, query)
        transport.sendto(reply, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._attachment.udp_closed.done():
            self._attachment.udp_closed.set_result(None)


class _TcpConnection(asyncio.Protocol):
    """RFC 7766: length-prefixed queries, several per connection, answered as they resolve."""

    def __init__(self, attachment: _Attachment) -> None:
        self._attachment = attachment
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if len(self._attachment.connections) >= _TCP_CONNECTIONS_MAX:
            self._transport.close()
            return
        self._attachment.connections.add(self._transport)
        self._touch()

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._touch()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2:
            end = 2 + (buffer[0] << 8 | buffer[1])
            if len(buffer) < end:
                break
            packet = bytes(buffer[2:end])
            del buffer[:end]
            if self._attachment.gate.closed:
                self._attachment.gate.defer(functools.partial(self._question, packet))
            else:
                self._question(packet)

    def _question(self, packet: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        result = self._attachment.answer(packet)
        if result is None:
            transport.close()
            return
        if isinstance(result, bytes):
            self._send(result)
        else:
            self._attachment.forward(packet, result, self._send, over_tcp=True)

    def _send(self, reply: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(len(reply).to_bytes(2) + reply)

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._transport is not None:
            loop = asyncio.get_running_loop()
            self._idle = loop.call_later(_TCP_IDLE_S, self._transport.close)

    def pause_writing(self) -> None:
        # A client that sends but does not read gets no more answers queued for it.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._transport is not None:
            self._attachment.connections.discard(self._transport)


async def _open_sockets(netns: Path) -> tuple[socket.socket, socket.socket]:
    opening = asyncio.ensure_future(asyncio.to_thread(sockets.open_dns_sockets, netns))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        # The thread finishes anyway: close what it opens, or the address stays taken.
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future[tuple[socket.socket, socket.socket]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        for sock in opening.result():
            sock.close()
