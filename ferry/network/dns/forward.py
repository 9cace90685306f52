"""Forwarding the questions that are not ours to the host's resolvers.

Each forwarded query gets its own UDP socket in ferryd's namespace (so a fresh random source
port) and a fresh random ID, and only a reply from one of the upstreams that carries that ID and
repeats our question is accepted: two unguessable 16-bit values stand between a spoofer and the
containers. Upstreams are asked one after the other, each given an equal share of the time left,
and a late answer from an earlier one still counts. When the asker came over TCP and the answer
is truncated, the same upstream is asked again over TCP.

Be aware: nothing here caches; upstream answers are relayed byte for byte except for the ID.
In-flight forwards are capped per server: past the cap the asker gets SERVFAIL at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
from collections.abc import Sequence

from ferry.errors import InvalidArgument
from ferry.network.dns import wire

_MAX_REPLY_BYTES = 65535
_TC_BIT = 0x02  # in the third header byte
_QR_BIT = 0x80


class Forwarder:
    def __init__(
        self, upstreams: Sequence[str], timeout_s: float, port: int = 53, max_in_flight: int = 256
    ) -> None:
        try:
            self._upstreams = [(str(ipaddress.IPv4Address(addr)), port) for addr in upstreams]
        except ValueError as exc:
            raise InvalidArgument(f"DNS upstreams must be IPv4 addresses: {exc}") from exc
        self._upstream_set = frozenset(self._upstreams)
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._in_flight = 0

    @property
    def enabled(self) -> bool:
        return bool(self._upstreams)

    async def forward(self, packet: bytes, query: wire.Query, *, over_tcp: bool) -> bytes:
        """The upstream answer to ``packet`` with the asker's ID, or SERVFAIL."""
        if self._in_flight >= self._max_in_flight:
            return _servfail(packet, query)
        self._in_flight += 1
        try:
            reply = await self._ask(packet, query, over_tcp)
        finally:
            self._in_flight -= 1
        if reply is None:
            return _servfail(packet, query)
        return packet[:2] + reply[2:]

    async def _ask(self, packet: bytes, query: wire.Query, over_tcp: bool) -> bytes | None:
        loop = asyncio.get_running_loop()
        msg_id = secrets.randbits(16).to_bytes(2)
        outgoing = msg_id + packet[2:]
        question = packet[12 : query.question_end].lower()
        deadline = loop.time() + self._timeout_s
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            for index, upstream in enumerate(self._upstreams):
                try:
                    await loop.sock_sendto(sock, outgoing, upstream)
                except OSError:  # unreachable from here: the next upstream may not be
                    continue
                share = (deadline - loop.time()) / (len(self._upstreams) - index)
                answer = await self._receive(sock, msg_id, question, share)
                if answer is None:
                    continue
                reply, source = answer
                if over_tcp and reply[2] & _TC_BIT:
                    return await self._ask_tcp(source, outgoing) or reply
                return reply
        return None

    async def _receive(
        self, sock: socket.socket, msg_id: bytes, question: bytes, timeout_s: float
    ) -> tuple[bytes, tuple[str, int]] | None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                while True:
                    data, source = await loop.sock_recvfrom(sock, _MAX_REPLY_BYTES)
                    if (
                        source in self._upstream_set
                        and len(data) >= 12 + len(question)
                        and data[:2] == msg_id
                        and data[2] & _QR_BIT
                        and data[12 : 12 + len(question)].lower() == question
                    ):
                        return data, source
        except (TimeoutError, OSError):
            return None

    async def _ask_tcp(self, upstream: tuple[str, int], outgoing: bytes) -> bytes | None:
        try:
            async with asyncio.timeout(self._timeout_s):
                reader, writer = await asyncio.open_connection(*upstream)
                try:
                    writer.write(len(outgoing).to_bytes(2) + outgoing)
                    size = int.from_bytes(await reader.readexactly(2))
                    reply = await reader.readexactly(size)
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            return None
        if len(reply) < 12 or reply[:2] != outgoing[:2] or not reply[2] & _QR_BIT:
            return None
        return reply


def _servfail(packet: bytes, query: wire.Query) -> bytes:
    template = wire.build_template(query, wire.SERVFAIL, authoritative=False)
    return template.render(packet, query.question_end)
