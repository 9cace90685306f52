"""The DNS wire format by hand, checked against dnspython's reading of the same bytes."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from ferry.errors import InvalidArgument
from ferry.network.dns import wire


def make_query(
    name: str,
    rdtype: str = "A",
    *,
    msg_id: int = 0x1234,
    edns: bool = False,
    dnssec: bool = False,
    rd: bool = True,
) -> bytes:
    query = dns.message.make_query(
        name, rdtype, use_edns=0 if edns or dnssec else False, want_dnssec=dnssec
    )
    query.id = msg_id
    if not rd:
        query.flags &= ~dns.flags.RD
    return query.to_wire()


def reply_for(packet: bytes, rcode: int, answers: tuple[bytes, ...] = (), **kw: bool) -> bytes:
    query = wire.parse_query(packet)
    return wire.build_template(query, rcode, answers, **kw).render(packet, query.question_end)


def read(reply: bytes) -> dns.message.Message:
    return dns.message.from_wire(reply)


def test_a_plain_query_is_parsed_into_its_question() -> None:
    query = wire.parse_query(make_query("Web.My_Overlay", "AAAA", msg_id=77))
    assert query.msg_id == 77
    assert query.opcode == wire.OPCODE_QUERY
    assert query.rd is True
    assert query.qname == "web.my_overlay"
    assert query.qtype == wire.TYPE_AAAA
    assert query.qclass == wire.CLASS_IN
    assert query.edns is None
    assert query.udp_limit() == 512


def test_a_query_with_edns_carries_its_payload_and_do_bit() -> None:
    query = wire.parse_query(make_query("web", edns=True, dnssec=True))
    assert query.edns == wire.Edns(payload_bytes=1232, version=0, dnssec_ok=True)
    assert query.udp_limit() == 1232


def test_a_query_like_dig_sends_with_a_cookie_option_is_understood() -> None:
    query = dns.message.make_query("web", "A", use_edns=0, payload=4096)
    query.use_edns(0, payload=4096, options=[dns.edns.CookieOption(b"01234567", b"")])
    packet = query.to_wire()
    parsed = wire.parse_query(packet)
    assert parsed.edns is not None
    assert parsed.udp_limit() == 1232  # never more than we advertise
    found = wire.cache_key(packet)
    assert found is not None
    assert found[1] == parsed.question_end


def test_the_root_name_is_the_empty_string() -> None:
    assert wire.parse_query(make_query(".", "NS")).qname == ""


def test_a_dot_inside_a_label_is_escaped_so_it_never_matches_a_longer_name() -> None:
    name = dns.name.Name([b"a.b", b"C", b""])
    packet = dns.message.make_query(name, "A").to_wire()
    assert wire.parse_query(packet).qname == "a\\046b.c"


HEADER_1Q = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00"  # ID, RD, one question, then ARCOUNT


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        pytest.param(b"\x12\x34\x01\x00", "shorter than", id="short"),
        pytest.param(
            dns.message.make_response(dns.message.make_query("a", "A")).to_wire(),
            "response",
            id="a response",
        ),
        pytest.param(
            b"\x00\x01\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01",
            "questions",
            id="two questions",
        ),
        pytest.param(HEADER_1Q + b"\x00\x00\xc0\x0c\x00\x01\x00\x01", "compressed", id="pointer"),
        pytest.param(HEADER_1Q + b"\x00\x00\x03ab", "past the packet", id="short label"),
        pytest.param(HEADER_1Q + b"\x00\x00\x01a\x00\x00\x01", "truncated", id="short question"),
        pytest.param(HEADER_1Q + b"\x00\x01\x01a\x00\x00\x01\x00\x01", "record", id="no record"),
    ],
)
def test_bad_packets_are_rejected_by_the_parser_and_have_no_cache_key(
    packet: bytes, why: str
) -> None:
    with pytest.raises(wire.MalformedPacket, match=why):
        wire.parse_query(packet)
    assert wire.cache_key(packet) is None


def test_the_cache_key_ignores_id_and_letter_case() -> None:
    first = wire.cache_key(make_query("WEB.net", msg_id=1))
    second = wire.cache_key(make_query("web.NET", msg_id=2))
    assert first is not None
    assert first == second


@pytest.mark.parametrize(
    "other",
    [
        make_query("web", "AAAA"),
        make_query("web", rd=False),
        make_query("web", edns=True),
        make_query("web", dnssec=True),
        make_query("web2"),
    ],
)
def test_the_cache_key_changes_with_everything_that_changes_the_reply(other: bytes) -> None:
    assert wire.cache_key(other) != wire.cache_key(make_query("web"))


def test_unusual_queries_have_no_cache_key_but_still_parse() -> None:
    query = dns.message.make_query("web", "A")
    query.use_edns(1)  # a version we do not speak: answered BADVERS, never cached
    packet = query.to_wire()
    assert wire.cache_key(packet) is None
    assert wire.parse_query(packet).edns == wire.Edns(1232, 1, False)


def test_an_answer_is_rendered_with_each_askers_id_and_letter_case() -> None:
    template_query = wire.parse_query(make_query("web.net"))
    template = wire.build_template(template_query, wire.NOERROR, (wire.a_record("10.0.0.2", 600),))
    asker = make_query("WeB.NeT", msg_id=4242)
    reply = read(template.render(asker, wire.parse_query(asker).question_end))
    assert reply.id == 4242
    assert reply.question[0].name.to_text() == "WeB.NeT."
    assert reply.answer[0].name.to_text() == "WeB.NeT."
    assert [r.to_text() for r in reply.answer[0]] == ["10.0.0.2"]
    assert reply.answer[0].ttl == 600
    assert reply.flags & dns.flags.QR
    assert reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.RA
    assert reply.flags & dns.flags.RD


def test_several_addresses_are_answered_in_the_order_given() -> None:
    addrs = ("10.0.0.9", "10.0.0.1", "10.0.0.5")
    records = tuple(wire.a_record(a, 30) for a in addrs)
    reply = read(reply_for(make_query("svc"), wire.NOERROR, records))
    assert [r.to_text() for r in reply.answer[0]] == list(addrs)


def test_rd_is_copied_from_the_query() -> None:
    reply = read(reply_for(make_query("web", rd=False), wire.NOERROR))
    assert not reply.flags & dns.flags.RD


def test_nxdomain_is_authoritative_and_empty() -> None:
    reply = read(reply_for(make_query("gone"), wire.NXDOMAIN))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    assert (reply.answer, reply.authority, reply.additional) == ([], [], [])


def test_nodata_is_noerror_without_answers() -> None:
    reply = read(reply_for(make_query("web", "AAAA"), wire.NOERROR))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert reply.question[0].rdtype == dns.rdatatype.AAAA


def test_refused_is_not_authoritative() -> None:
    reply = read(reply_for(make_query("example.com"), wire.REFUSED, authoritative=False))
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA


def test_an_edns_query_gets_an_opt_record_back_with_the_do_bit_echoed() -> None:
    reply = read(reply_for(make_query("web", dnssec=True), wire.NOERROR))
    assert reply.edns == 0
    assert reply.payload == 1232
    assert reply.ednsflags & dns.flags.DO


def test_badvers_travels_in_the_opt_record() -> None:
    query = dns.message.make_query("web", "A")
    query.use_edns(1)
    reply = read(reply_for(query.to_wire(), wire.BADVERS, authoritative=False))
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0


def test_a_ptr_answer_names_the_target() -> None:
    record = wire.ptr_record("app2.my_overlay", 600)
    reply = read(reply_for(make_query("2.0.0.10.in-addr.arpa", "PTR"), wire.NOERROR, (record,)))
    assert [r.to_text() for r in reply.answer[0]] == ["app2.my_overlay."]


def test_a_truncated_reply_keeps_the_question_and_sets_tc() -> None:
    packet = make_query("many", edns=True)
    records = tuple(wire.a_record(f"10.0.1.{i}", 600) for i in range(100))
    full = reply_for(packet, wire.NOERROR, records)
    cut = read(wire.truncated(full, wire.parse_query(packet)))
    assert cut.flags & dns.flags.TC
    assert cut.answer == []
    assert cut.question[0].name.to_text() == "many."
    assert cut.edns == 0


@pytest.mark.parametrize(
    ("qname", "ipv4"),
    [
        ("4.3.2.1.in-addr.arpa", "1.2.3.4"),
        ("0.0.0.10.in-addr.arpa", "10.0.0.0"),
        ("3.2.1.in-addr.arpa", None),
        ("256.0.0.10.in-addr.arpa", None),
        ("a.0.0.10.in-addr.arpa", None),
        ("1.0.0.0.ip6.arpa", None),
        ("web", None),
    ],
)
def test_reverse_names_map_to_ipv4_addresses(qname: str, ipv4: str | None) -> None:
    assert wire.ipv4_of_reverse_name(qname) == ipv4


@pytest.mark.parametrize("name", ["a..b", "x" * 64, "caf\u00e9", ".".join(["abcdefgh"] * 30)])
def test_names_that_cannot_be_encoded_are_invalid_arguments(name: str) -> None:
    with pytest.raises(InvalidArgument):
        wire.encode_name(name)


def test_a_name_encodes_the_same_with_or_without_the_trailing_dot() -> None:
    assert wire.encode_name("a.bc.") == wire.encode_name("a.bc") == b"\x01a\x02bc\x00"
