"""A container's log as records with their stream and time (pure; the reading of the file the
monitor writes, see ``monitor.py``).

Each line of the file is one record, ``<time> <stream> <tag> <text>`` (the CRI log format that
conmon writes; Docker's json-file keeps the same three facts): time in RFC 3339 with
nanoseconds, stream ``stdout`` or ``stderr``, tag ``F`` for a line that ended with a newline or
``P`` for a part of a longer one (the newline is not in the file). So the exact bytes the
container wrote on each stream can be given back, with Docker's ``--timestamps``, ``--since``,
``--until`` and ``--tail``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ferry.errors import InvalidArgument

STDOUT = 1
STDERR = 2
_STREAMS = {b"stdout": STDOUT, b"stderr": STDERR}


@dataclass(frozen=True)
class LogRecord:
    stream: int  # 1 stdout, 2 stderr (Docker's frame numbers)
    time: str  # as written: 2026-11-30T06:11:07.789766267+00:00
    data: bytes  # with its newline unless partial

    @property
    def epoch_s(self) -> float:
        return parse_time(self.time)

    def docker_time(self) -> str:
        """Docker's ``--timestamps`` spelling: UTC, nine digits, ``Z``."""
        return docker_time(self.time)


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nine fractional digits."""
    head, dot, rest = text.partition(".")
    frac, zone = "0", "+00:00"
    if dot:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, zone = rest[:i] or "0", rest[i:] or "+00:00"
    elif head.endswith("Z"):
        head, zone = head[:-1], "+00:00"
    elif len(head) > 19:
        head, zone = head[:19], head[19:]
    if zone == "Z":
        zone = "+00:00"
    base = dt.datetime.fromisoformat(head + zone)
    return base.timestamp() + float("0." + frac)


def docker_time(text: str) -> str:
    head, _, rest = text.partition(".")
    digits = "".join(c for c in rest.split("+")[0].split("Z")[0] if c.isdigit())
    stamp = dt.datetime.fromisoformat(head + (text[len(head) + 1 + len(digits) :] or "+00:00"))
    utc = stamp.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + f".{digits.ljust(9, '0')[:9]}Z"


def parse_line(line: bytes) -> LogRecord | None:
    """One record from one line of the file (without its newline); None if malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS:
        return None
    text = parts[3] if len(parts) == 4 else b""
    data = text if parts[2] == b"P" else text + b"\n"
    return LogRecord(_STREAMS[parts[1]], parts[0].decode(), data)


def parse(data: bytes) -> tuple[list[LogRecord], int]:
    """The complete records in ``data`` and how many bytes they took (a record being written
    is left for the next read)."""
    end = data.rfind(b"\n") + 1
    records = [r for line in data[:end].splitlines() if (r := parse_line(line)) is not None]
    return records, end


def select(
    records: Iterable[LogRecord],
    *,
    streams: frozenset[int] = frozenset({STDOUT, STDERR}),
    since_s: float = 0.0,
    until_s: float = 0.0,
) -> Iterator[LogRecord]:
    for record in records:
        if record.stream not in streams:
            continue
        if since_s and record.epoch_s < since_s:
            continue
        if until_s and record.epoch_s > until_s:
            continue
        yield record


def tail(records: list[LogRecord], lines: int) -> list[LogRecord]:
    """The records of the last ``lines`` lines (a partial record belongs to the line it
    starts), as ``--tail`` counts."""
    if lines < 0:
        return records
    count = 0
    for i in range(len(records) - 1, -1, -1):
        if records[i].data.endswith(b"\n"):
            count += 1
            if count > lines:
                return records[i + 1 :]
    return records


def render(record: LogRecord, timestamps: bool) -> bytes:
    """A record's bytes as ``docker logs`` prints them."""
    if timestamps:
        return record.docker_time().encode() + b" " + record.data
    return record.data


def parse_since(value: str, now_s: float) -> float:
    """Docker's ``--since``/``--until``: a Unix time (with fractions), an RFC 3339 time, or a
    duration before now (``10m``, ``1h30m``, ``45s``). 0 when empty."""
    value = value.strip()
    if not value or value == "0":
        return 0.0
    try:
        return float(value)
    except ValueError:
        pass
    if _DURATION_RE.match(value):
        return now_s - sum(
            float(number) * _DURATION_UNITS[unit] for number, unit in _PART_RE.findall(value)
        )
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidArgument(
            f"invalid time {value!r}: use a Unix time, an RFC 3339 time or a duration (10m)"
        ) from exc


_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$")
