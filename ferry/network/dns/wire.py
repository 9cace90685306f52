"""DNS wire format for the embedded resolver: queries parsed by hand, answers built as bytes.

Owns just enough of RFC 1035 and RFC 6891 (EDNS) to answer from precomputed bytes. An answer is
built once as a :class:`Template` — the 10 header bytes after the ID, and everything after the
question — so the reply to a repeated question is the asker's ID, the template's head, the asker's
own question bytes (which keeps the letter case it used, as 0x20-randomising resolvers require)
and the template's tail. Answer records name their owner with a compression pointer to the
question at offset 12, so the tail never depends on the asker's case.

:func:`cache_key` is the hot path: a walk over the question's labels that yields a key for the
answer cache, or None for anything unusual, which then goes through :func:`parse_query`.

Be aware: only queries are understood (one question; answer and authority records are skipped);
a question name must not use compression (no resolver sends one); EDNS options such as cookies
are ignored and never echoed; TSIG and SIG(0) are not verified. Names are ASCII: other bytes and
dots inside a label are kept in escaped presentation form (``\\046``), so they never match one of
our names.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ferry.errors import InvalidArgument

HEADER_BYTES = 12
MAX_UDP_BYTES = 512  # a reply to a query without EDNS must fit in this
EDNS_PAYLOAD_BYTES = 1232  # what we advertise and accept: the DNS flag day 2020 value

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
TYPE_OPT = 41
CLASS_IN = 1

OPCODE_QUERY = 0
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
BADVERS = 16  # an extended rcode: its upper bits travel in the OPT record

QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080

_QNAME_POINTER = b"\xc0\x0c"  # the question's name, always at offset 12 of a reply
_ONE_QUESTION_NO_RECORDS = b"\x00\x01\x00\x00\x00\x00"  # QDCOUNT=1, ANCOUNT=0, NSCOUNT=0
_AR_NONE = b"\x00\x00"
_AR_ONE = b"\x00\x01"
_OPT_TYPE = b"\x00\x29"
# Cache-key suffixes: bit 0 = RD, bit 1 = EDNS present, bit 2 = DNSSEC OK (echoed per RFC 3225).
_MARKERS = tuple(bytes((marker,)) for marker in range(8))
_ARPA_V4 = ".in-addr.arpa"


class MalformedPacket(InvalidArgument):
    """A packet that is not a DNS query we can read: dropped over UDP, the connection closed
    over TCP."""


@dataclass(frozen=True, slots=True)
class Edns:
    payload_bytes: int
    version: int
    dnssec_ok: bool


@dataclass(frozen=True, slots=True)
class Query:
    msg_id: int
    opcode: int
    rd: bool
    qname: str  # lower case, no trailing dot, "" for the root
    qtype: int
    qclass: int
    question_end: int  # offset just past the question: where answers start in a reply
    edns: Edns | None

    def udp_limit(self) -> int:
        """The largest UDP reply this asker accepts (RFC 6891 6.2.5: never below 512)."""
        if self.edns is None:
            return MAX_UDP_BYTES
        return max(MAX_UDP_BYTES, min(self.edns.payload_bytes, EDNS_PAYLOAD_BYTES))


@dataclass(frozen=True, slots=True)
class Template:
    """A reply without its ID and question: valid for every query with the same cache key."""

    head: bytes  # flags and the four section counts: the 10 bytes after the ID
    tail: bytes  # answer, authority and additional sections

    def render(self, packet: bytes, question_end: int) -> bytes:
        return packet[:2] + self.head + packet[12:question_end] + self.tail


def cache_key(packet: bytes) -> tuple[bytes, int] | None:
    """The answer-cache key of a plain query, and where its question ends.

    The key is the question with its name lower-cased, plus one byte for RD, EDNS and DO: every
    input that changes the reply. None when the packet is not a plain query (a response, another
    opcode, more than a question and an EDNS OPT record, EDNS version above 0, or malformed); the
    caller then parses it fully with :func:`parse_query`.
    """
    size = len(packet)
    if size < 17 or packet[2] & 0xF8 or packet[4:10] != _ONE_QUESTION_NO_RECORDS:
        return None
    name_end = _plain_name_end(packet)
    question_end = name_end + 4
    if name_end < 0 or question_end > size:
        return None
    additional = packet[10:12]
    if additional == _AR_NONE:
        marker = packet[2] & 1
    elif additional == _AR_ONE and _is_plain_opt(packet, question_end):
        marker = (packet[2] & 1) | 2 | (4 if packet[question_end + 7] & 0x80 else 0)
    else:
        return None
    key = packet[12:name_end].lower() + packet[name_end:question_end] + _MARKERS[marker]
    return key, question_end


def _plain_name_end(packet: bytes) -> int:
    """The offset after the question's name, or -1 when it is compressed or malformed."""
    end = 12
    size = len(packet)
    while end < size:
        label = packet[end]
        if label == 0:
            return end + 1 if end + 1 - 12 <= 255 else -1
        if label > 63:  # a compression pointer or a reserved label type
            return -1
        end += label + 1
    return -1


def _is_plain_opt(packet: bytes, offset: int) -> bool:
    """Whether an EDNS version 0 OPT record (root owner, type 41) fills ``packet`` at offset."""
    return (
        offset + 11 <= len(packet)
        and packet[offset] == 0
        and packet[offset + 1 : offset + 3] == _OPT_TYPE
        and packet[offset + 6] == 0
        and offset + 11 + int.from_bytes(packet[offset + 9 : offset + 11]) <= len(packet)
    )


def parse_query(packet: bytes) -> Query:
    """Read the header, the question and any EDNS OPT record of a query."""
    if len(packet) < HEADER_BYTES:
        raise MalformedPacket("shorter than a DNS header")
    msg_id, flags, questions, answers, authority, additional = struct.unpack_from("!6H", packet)
    if flags & QR:
        raise MalformedPacket("a response, not a query")
    if questions != 1:
        raise MalformedPacket(f"{questions} questions (only 1 is supported)")
    qname, name_end = _read_question_name(packet)
    question_end = name_end + 4
    if question_end > len(packet):
        raise MalformedPacket("question truncated")
    qtype, qclass = struct.unpack_from("!HH", packet, name_end)
    offset = question_end
    edns: Edns | None = None
    for index in range(answers + authority + additional):
        rtype, rclass, ttl, offset = _skip_record(packet, offset)
        if rtype != TYPE_OPT:
            continue
        if index < answers + authority or edns is not None:
            raise MalformedPacket("OPT record out of place or repeated")
        edns = Edns(max(rclass, MAX_UDP_BYTES), (ttl >> 16) & 0xFF, bool(ttl & 0x8000))
    return Query(
        msg_id=msg_id,
        opcode=(flags >> 11) & 0xF,
        rd=bool(flags & RD),
        qname=qname,
        qtype=qtype,
        qclass=qclass,
        question_end=question_end,
        edns=edns,
    )


def _read_question_name(packet: bytes) -> tuple[str, int]:
    labels: list[str] = []
    offset = 12
    while True:
        if offset >= len(packet):
            raise MalformedPacket("question name runs past the packet")
        size = packet[offset]
        if size == 0:
            break
        if size > 63:
            raise MalformedPacket("compressed or reserved label in the question")
        raw = packet[offset + 1 : offset + 1 + size]
        if len(raw) != size:
            raise MalformedPacket("label runs past the packet")
        labels.append(_label_text(raw.lower()))
        offset += size + 1
    if offset + 1 - 12 > 255:
        raise MalformedPacket("name longer than 255 bytes")
    return ".".join(labels), offset + 1


def _label_text(raw: bytes) -> str:
    if raw.isalnum() or all(33 <= b < 127 and b not in (0x2E, 0x5C) for b in raw):
        return raw.decode("ascii")
    return "".join(chr(b) if 33 <= b < 127 and b not in (0x2E, 0x5C) else f"\\{b:03d}" for b in raw)


def _skip_record(packet: bytes, offset: int) -> tuple[int, int, int, int]:
    """Skip one resource record; returns its type, class, TTL and the offset after it."""
    while True:
        if offset >= len(packet):
            raise MalformedPacket("record name runs past the packet")
        size = packet[offset]
        if size >= 0xC0:  # a compression pointer ends the name
            offset += 2
            break
        if size > 63:
            raise MalformedPacket("reserved label type")
        offset += size + 1
        if size == 0:
            break
    if offset + 10 > len(packet):
        raise MalformedPacket("record header truncated")
    rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", packet, offset)
    offset += 10 + rdlength
    if offset > len(packet):
        raise MalformedPacket("record data truncated")
    return rtype, rclass, ttl, offset


def build_template(
    query: Query, rcode: int, answers: tuple[bytes, ...] = (), *, authoritative: bool = True
) -> Template:
    """A reply to ``query`` with ``rcode`` and already-encoded answer records."""
    flags = QR | RA | (query.opcode << 11) | (rcode & 0xF)
    if query.rd:
        flags |= RD
    if authoritative:
        flags |= AA
    tail = b"".join(answers)
    additional = 0
    if query.edns is not None:
        tail += opt_record(query.edns, rcode)
        additional = 1
    return Template(struct.pack("!5H", flags, 1, len(answers), 0, additional), tail)


def opt_record(edns: Edns, rcode: int = NOERROR) -> bytes:
    """Our OPT record: payload 1232, version 0, the asker's DO bit, no options."""
    flags = 0x8000 if edns.dnssec_ok else 0
    return b"\x00" + struct.pack("!HHBBHH", TYPE_OPT, EDNS_PAYLOAD_BYTES, rcode >> 4, 0, flags, 0)


def a_record(addr: str, ttl_s: int) -> bytes:
    rdata = ipaddress.IPv4Address(addr).packed
    return _QNAME_POINTER + struct.pack("!HHIH", TYPE_A, CLASS_IN, ttl_s, 4) + rdata


def ptr_record(target: str, ttl_s: int) -> bytes:
    rdata = encode_name(target)
    return _QNAME_POINTER + struct.pack("!HHIH", TYPE_PTR, CLASS_IN, ttl_s, len(rdata)) + rdata


def encode_name(name: str) -> bytes:
    """A name in wire form (absolute; a trailing dot is optional)."""
    text = name.removesuffix(".")
    if not text:
        return b"\x00"
    out = bytearray()
    for label in text.split("."):
        if not (label.isascii() and 0 < len(label) <= 63):
            raise InvalidArgument(f"cannot encode DNS name {name!r}: bad label {label!r}")
        out.append(len(label))
        out += label.encode("ascii")
    out += b"\x00"
    if len(out) > 255:
        raise InvalidArgument(f"cannot encode DNS name {name!r}: longer than 255 bytes")
    return bytes(out)


def truncated(reply: bytes, query: Query) -> bytes:
    """``reply`` cut to its header and question with TC set, so the asker retries over TCP."""
    flags = int.from_bytes(reply[2:4]) | TC
    additional = 0 if query.edns is None else 1
    head = reply[:2] + struct.pack("!5H", flags, 1, 0, 0, additional)
    opt = b"" if query.edns is None else opt_record(query.edns)
    return head + reply[12 : query.question_end] + opt


def ipv4_of_reverse_name(qname: str) -> str | None:
    """``"4.3.2.1.in-addr.arpa"`` → ``"1.2.3.4"``; None for anything else (ip6.arpa, partial)."""
    if not qname.endswith(_ARPA_V4):
        return None
    octets = qname[: -len(_ARPA_V4)].split(".")
    if len(octets) != 4:
        return None
    for octet in octets:
        if not (octet.isascii() and octet.isdecimal() and len(octet) <= 3 and int(octet) <= 255):
            return None
    return ".".join(str(int(octet)) for octet in reversed(octets))
