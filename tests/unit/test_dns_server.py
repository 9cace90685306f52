"""DnsServer on plain loopback sockets, queried with dnspython over UDP and TCP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from ferry.errors import InvalidArgument
from ferry.kernel.sockets import bind_dns_sockets
from ferry.network.dns import DnsServer

LOOPBACK = "127.0.0.1"


@dataclass
class Records:
    """What lookup/reverse answer, per asker key; calls are counted to see the cache work."""

    names: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    reverse_names: dict[str, str] = field(default_factory=dict)
    lookups: list[tuple[str, str]] = field(default_factory=list)

    def lookup(self, key: str, qname: str) -> tuple[str, ...] | None:
        self.lookups.append((key, qname))
        return self.names.get(key, {}).get(qname)

    def reverse(self, key: str, ipv4: str) -> str | None:
        return self.reverse_names.get(ipv4)


@dataclass
class Rig:
    server: DnsServer
    records: Records
    port: int

    async def udp(self, name: str, rdtype: str = "A", **kw: object) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
        return await dns.asyncquery.udp(query, LOOPBACK, timeout=2, port=self.port)

    async def tcp(self, name: str, rdtype: str = "A") -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        return await dns.asyncquery.tcp(query, LOOPBACK, timeout=2, port=self.port)


async def serve(server: DnsServer, key: str) -> int:
    udp, tcp = bind_dns_sockets(LOOPBACK, 0)
    port: int = udp.getsockname()[1]
    await server.attach_sockets(key, udp, tcp)
    return port


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    records = Records()
    records.names["c1"] = {
        "web": ("10.0.0.2",),
        "svc": ("10.0.0.9", "10.0.0.1", "10.0.0.5"),
        "web.my_overlay": ("10.0.0.2",),
        "gone": (),
    }
    records.reverse_names["10.0.0.2"] = "web.my_overlay"
    server = DnsServer(records.lookup, records.reverse, upstreams=[], ttl_s=30)
    try:
        yield Rig(server, records, await serve(server, "c1"))
    finally:
        await server.close()


def addresses(reply: dns.message.Message) -> list[str]:
    return [rdata.to_text() for rrset in reply.answer for rdata in rrset]


async def test_an_a_query_over_udp_gets_every_address_in_the_order_given(rig: Rig) -> None:
    reply = await rig.udp("svc")
    assert addresses(reply) == ["10.0.0.9", "10.0.0.1", "10.0.0.5"]
    assert reply.answer[0].ttl == 30
    assert reply.flags & dns.flags.AA


async def test_an_a_query_over_tcp_gets_the_same_answer(rig: Rig) -> None:
    assert addresses(await rig.tcp("svc")) == ["10.0.0.9", "10.0.0.1", "10.0.0.5"]


async def test_names_are_case_insensitive_and_the_askers_case_comes_back(rig: Rig) -> None:
    reply = await rig.udp("WEB.My_Overlay")
    assert addresses(reply) == ["10.0.0.2"]
    assert reply.question[0].name.to_text() == "WEB.My_Overlay."
    assert ("c1", "web.my_overlay") in rig.records.lookups


async def test_an_edns_query_gets_an_opt_record_back(rig: Rig) -> None:
    reply = await rig.udp("web", use_edns=0, payload=4096)
    assert addresses(reply) == ["10.0.0.2"]
    assert reply.edns == 0
    assert reply.payload == 1232


async def test_aaaa_for_one_of_our_names_is_noerror_without_answers(rig: Rig) -> None:
    reply = await rig.udp("web", "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []


async def test_a_name_of_ours_without_addresses_is_nxdomain(rig: Rig) -> None:
    assert (await rig.udp("gone")).rcode() == dns.rcode.NXDOMAIN


async def test_ptr_queries_are_answered_from_reverse(rig: Rig) -> None:
    reply = await rig.udp("2.0.0.10.in-addr.arpa", "PTR")
    assert addresses(reply) == ["web.my_overlay."]


async def test_names_not_ours_are_refused_at_once_without_upstreams(rig: Rig) -> None:
    for reply in (await rig.udp("example.com"), await rig.tcp("example.com")):
        assert reply.rcode() == dns.rcode.REFUSED
    assert (await rig.udp("9.9.9.9.in-addr.arpa", "PTR")).rcode() == dns.rcode.REFUSED


async def test_an_address_that_cannot_be_encoded_is_logged_and_answered_servfail(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.records.names["c1"]["v6"] = ("fe80::1",)
    assert (await rig.udp("v6")).rcode() == dns.rcode.SERVFAIL
    assert "'v6' asked by c1" in caplog.text
    assert addresses(await rig.udp("web")) == ["10.0.0.2"]  # the socket still serves


async def test_answers_are_cached_until_invalidate(rig: Rig) -> None:
    assert addresses(await rig.udp("web")) == ["10.0.0.2"]
    rig.records.names["c1"]["web"] = ("10.0.0.77",)
    calls = len(rig.records.lookups)
    assert addresses(await rig.udp("web")) == ["10.0.0.2"]
    assert len(rig.records.lookups) == calls  # served from the cache
    rig.server.invalidate()
    assert addresses(await rig.udp("web")) == ["10.0.0.77"]


async def test_each_container_asks_with_its_own_key(rig: Rig) -> None:
    rig.records.names["c2"] = {"web": ("10.9.9.9",)}
    port2 = await serve(rig.server, "c2")
    query = dns.message.make_query("web", "A")
    other = await dns.asyncquery.udp(query, LOOPBACK, timeout=2, port=port2)
    assert addresses(other) == ["10.9.9.9"]
    assert addresses(await rig.udp("web")) == ["10.0.0.2"]
    assert rig.server.attached == {"c1", "c2"}


async def test_several_queries_share_one_tcp_connection(rig: Rig) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, rig.port)
    try:
        queries = [dns.message.make_query(n, "A") for n in ("web", "svc", "gone")]
        # Pipelined: all three written before any answer is read.
        for query in queries:
            wire_query = query.to_wire()
            writer.write(len(wire_query).to_bytes(2) + wire_query)
        replies = []
        for _ in queries:
            size = int.from_bytes(await reader.readexactly(2))
            replies.append(dns.message.from_wire(await reader.readexactly(size)))
    finally:
        writer.close()
        await writer.wait_closed()
    assert [r.id for r in replies] == [q.id for q in queries]
    assert [r.rcode() for r in replies] == [0, 0, dns.rcode.NXDOMAIN]


async def test_malformed_udp_packets_are_ignored(rig: Rig) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(sock, b"\x00\x01garbage", (LOOPBACK, rig.port))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await loop.sock_recvfrom(sock, 512)
    assert addresses(await rig.udp("web")) == ["10.0.0.2"]


async def test_a_malformed_tcp_query_closes_the_connection(rig: Rig) -> None:
    reader, writer = await asyncio.open_connection(LOOPBACK, rig.port)
    try:
        writer.write(b"\x00\x0c" + b"\xff" * 12)  # a 12-byte "query" with QR set
        assert await asyncio.wait_for(reader.read(), 2) == b""
    finally:
        writer.close()
        await writer.wait_closed()


async def test_an_answer_too_long_for_udp_is_truncated_and_complete_over_tcp(rig: Rig) -> None:
    many = tuple(f"10.0.1.{i}" for i in range(1, 61))
    rig.records.names["c1"]["big"] = many
    over_udp = await rig.udp("big")
    assert over_udp.flags & dns.flags.TC
    assert over_udp.answer == []
    assert addresses(await rig.tcp("big")) == list(many)
    with_edns = await rig.udp("big", use_edns=0, payload=1232)
    assert addresses(with_edns) == list(many)  # 60 records fit in 1232 bytes


async def test_detach_closes_the_containers_sockets(rig: Rig) -> None:
    await rig.server.detach("c1")
    await rig.server.detach("c1")  # idempotent
    assert rig.server.attached == frozenset()
    with pytest.raises(dns.exception.Timeout):
        query = dns.message.make_query("web", "A")
        await dns.asyncquery.udp(query, LOOPBACK, timeout=0.3, port=rig.port)
    with pytest.raises(ConnectionRefusedError):
        await rig.tcp("web")


async def test_attaching_a_key_again_replaces_its_sockets(rig: Rig) -> None:
    new_port = await serve(rig.server, "c1")
    assert rig.server.attached == {"c1"}
    query = dns.message.make_query("web", "A")
    reply = await dns.asyncquery.udp(query, LOOPBACK, timeout=2, port=new_port)
    assert addresses(reply) == ["10.0.0.2"]
    with pytest.raises(ConnectionRefusedError):
        await rig.tcp("web")


# Forwarding, against a fake upstream resolver on loopback.

Answer = Callable[[dns.message.Message], list[dns.message.Message]]
StartUpstream = Callable[[Answer], Awaitable[tuple[int, "FakeUpstream"]]]


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers each query with what ``answer`` returns (nothing: silence); also serves TCP."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.seen: list[dns.message.Message] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.seen.append(query)
        assert self.transport is not None
        for reply in self.answer(query):
            self.transport.sendto(reply.to_wire(), addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(2))
        query = dns.message.from_wire(await reader.readexactly(size))
        reply = answer_with(query, [f"192.0.2.{i}" for i in range(1, 61)])
        payload = reply.to_wire()
        writer.write(len(payload).to_bytes(2) + payload)
        await writer.drain()
        writer.close()
        await writer.wait_closed()


def answer_with(query: dns.message.Message, addrs: list[str]) -> dns.message.Message:
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text_list(query.question[0].name, 60, "IN", "A", addrs))
    return reply


@pytest.fixture
async def upstream_for() -> AsyncIterator[StartUpstream]:
    closers: list[Callable[[], None]] = []

    async def start(answer: Answer) -> tuple[int, FakeUpstream]:
        loop = asyncio.get_running_loop()
        udp, tcp = bind_dns_sockets(LOOPBACK, 0)
        fake = FakeUpstream(answer)
        transport, _ = await loop.create_datagram_endpoint(lambda: fake, sock=udp)
        server = await asyncio.start_server(fake.serve_tcp, sock=tcp)
        closers.extend([transport.close, server.close])
        return udp.getsockname()[1], fake

    yield start
    for close in closers:
        close()
    await asyncio.sleep(0)


async def forwarding_rig(port: int, timeout_s: float = 2.0) -> tuple[DnsServer, int]:
    records = Records()
    server = DnsServer(
        records.lookup,
        records.reverse,
        upstreams=[LOOPBACK],
        forward_timeout_s=timeout_s,
        upstream_port=port,
    )
    return server, await serve(server, "c1")


async def test_names_not_ours_are_forwarded_and_relayed_with_the_askers_id(
    upstream_for: StartUpstream,
) -> None:
    upstream_port, fake = await upstream_for(lambda q: [answer_with(q, ["192.0.2.7"])])
    server, port = await forwarding_rig(upstream_port)
    try:
        query = dns.message.make_query("Example.COM", "A")
        reply = await dns.asyncquery.udp(query, LOOPBACK, timeout=2, port=port)
    finally:
        await server.close()
    assert reply.id == query.id  # dnspython checks it too
    assert addresses(reply) == ["192.0.2.7"]
    assert fake.seen[0].question[0].name.to_text() == "Example.COM."


async def test_a_spoofed_reply_with_the_wrong_id_is_ignored(
    upstream_for: StartUpstream,
) -> None:
    def spoof_then_answer(query: dns.message.Message) -> list[dns.message.Message]:
        spoof = answer_with(query, ["6.6.6.6"])
        spoof.id = (query.id + 1) % 65536
        return [spoof, answer_with(query, ["192.0.2.8"])]

    upstream_port, _ = await upstream_for(spoof_then_answer)
    server, port = await forwarding_rig(upstream_port)
    try:
        query = dns.message.make_query("example.org", "A")
        reply = await dns.asyncquery.udp(query, LOOPBACK, timeout=2, port=port)
    finally:
        await server.close()
    assert addresses(reply) == ["192.0.2.8"]


async def test_a_silent_upstream_becomes_servfail_after_the_timeout(
    upstream_for: StartUpstream,
) -> None:
    upstream_port, fake = await upstream_for(lambda q: [])
    server, port = await forwarding_rig(upstream_port, timeout_s=0.2)
    started = time.monotonic()
    try:
        query = dns.message.make_query("example.net", "A")
        reply = await dns.asyncquery.udp(query, LOOPBACK, timeout=2, port=port)
    finally:
        await server.close()
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert 0.2 <= time.monotonic() - started < 1.5
    assert len(fake.seen) == 1


async def test_a_truncated_upstream_answer_is_fetched_over_tcp_for_a_tcp_asker(
    upstream_for: StartUpstream,
) -> None:
    def truncated(query: dns.message.Message) -> list[dns.message.Message]:
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.TC
        return [reply]

    upstream_port, _ = await upstream_for(truncated)
    server, port = await forwarding_rig(upstream_port)
    try:
        query = dns.message.make_query("big.example", "A")
        over_udp = await dns.asyncquery.udp(query, LOOPBACK, timeout=2, port=port)
        over_tcp = await dns.asyncquery.tcp(query, LOOPBACK, timeout=2, port=port)
    finally:
        await server.close()
    assert over_udp.flags & dns.flags.TC
    assert len(addresses(over_tcp)) == 60


async def test_closing_the_server_cancels_pending_forwards(
    upstream_for: StartUpstream,
) -> None:
    upstream_port, fake = await upstream_for(lambda q: [])
    server, port = await forwarding_rig(upstream_port, timeout_s=30)
    query = dns.message.make_query("example.net", "A")
    asking = asyncio.ensure_future(dns.asyncquery.udp(query, LOOPBACK, timeout=0.3, port=port))
    while not fake.seen:
        await asyncio.sleep(0.01)
    relays = [t for t in asyncio.all_tasks() if "_relay" in repr(t.get_coro())]
    assert relays and not any(t.done() for t in relays)  # the forward waits on the upstream
    await asyncio.wait_for(server.close(), 1)
    assert server.attached == frozenset()
    assert all(t.cancelled() for t in relays)
    with pytest.raises(dns.exception.Timeout):
        await asking


def test_an_upstream_that_is_not_an_ipv4_address_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="IPv4"):
        DnsServer(Records().lookup, Records().reverse, upstreams=["dns.example"])


async def test_questions_asked_while_held_are_answered_once_released(rig: Rig) -> None:
    """After a restart, before the swarm's names are known: no NXDOMAIN for a name that exists,
    the question waits and gets the real answer (issue 8, input 5)."""
    rig.server.hold()
    rig.records.names["c1"]["late"] = ()  # not known yet: an answer now would be wrong
    udp = asyncio.ensure_future(rig.udp("late"))
    tcp = asyncio.ensure_future(rig.tcp("late"))
    await asyncio.sleep(0.2)
    assert not udp.done() and not tcp.done()
    rig.records.names["c1"]["late"] = ("10.0.0.7",)
    rig.server.release()
    assert addresses(await udp) == ["10.0.0.7"]
    assert addresses(await tcp) == ["10.0.0.7"]
    assert addresses(await rig.udp("web")) == ["10.0.0.2"]  # and later ones at once
