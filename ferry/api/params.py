"""Query parameters of the local API, each parsed one typed way, by Docker's rules.

Every parser takes the request's query (``request.query``, or any mapping of str to str) and
returns a typed value, or raises ``InvalidArgument`` with one line that names the parameter and
what it takes. Nothing falls through to a ``ValueError`` (a 500): ``t=null``, ``signal=99``,
``filters=[]`` and ``version=abc`` are 400s, with Docker's words where Docker has them.

Sources: moby ``api/server/httputils`` (booleans, forms), ``api/types/filters`` (the filters
JSON: ``{"name": {"x": true}}``, or the older ``{"name": ["x"]}``; "invalid filter 'k'" for a
key the list does not take), ``moby/sys/signal`` (a signal by number or by name, with or
without ``SIG``, case-insensitive; "invalid signal: X"; "the linux daemon does not support
signal N"), ``container_routes.go`` (``t`` is an integer; a negative one waits without limit;
``condition`` is not-running, next-exit or removed: "invalid condition: \"x\"") and the swarm
routes (``version`` is a required unsigned integer: "invalid service version 'x'").
"""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Collection, Mapping
from typing import Any

from ferry.api.body import loads
from ferry.errors import InvalidArgument
from ferry.model.rules import quoted

Query = Mapping[str, str]

_INTEGER = re.compile(r"^[+-]?[0-9]+$")  # ASCII digits only: int() would take "٣" and "1_0"
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
FALSE = frozenset({"", "0", "false", "no", "off", "none", "f", "n"})
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def _signals() -> dict[str, int]:
    """Docker's Linux signal names (without ``SIG``), with the real-time ones it names."""
    names = {name[3:]: int(sig) for name, sig in signal.Signals.__members__.items()}
    names |= {f"RTMIN+{i}": int(signal.SIGRTMIN) + i for i in range(1, 16)}
    names |= {f"RTMAX-{i}": int(signal.SIGRTMAX) - i for i in range(1, 15)}
    return names


SIGNALS = _signals()
VALID_SIGNALS = frozenset(int(s) for s in signal.valid_signals())


def boolean(query: Query, name: str, default: bool = False) -> bool:
    """Docker's truthy and falsy words (``1``, ``true``, ``0``, ``false``, …); others are
    refused."""
    raw = query.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InvalidArgument(f"invalid value for {name!r}: {raw!r} (use 1 or 0, true or false)")


def integer(
    query: Query,
    name: str,
    default: int,
    *,
    minimum: int = -INT64_MAX - 1,
    maximum: int = INT64_MAX,
) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = parse_integer(raw, name)
    if not minimum <= value <= maximum:
        raise InvalidArgument(
            f"invalid value for {name!r}: {raw!r} (an integer from {minimum} to {maximum})"
        )
    return value


def parse_integer(raw: str, name: str) -> int:
    if not _INTEGER.match(raw):
        raise InvalidArgument(f"invalid value for {name!r}: {raw!r} (an integer)")
    return int(raw)


def timeout_s(query: Query, default: float | None) -> float | None:
    """``t`` of stop and restart, in seconds; ``math.inf``: wait without limit (Docker: a
    negative t); ``default`` when not given."""
    if query.get("t") in (None, ""):
        return default
    seconds = integer(query, "t", 0)
    return math.inf if seconds < 0 else float(seconds)


def parse_signal(raw: str, name: str = "signal") -> int:
    """A signal by number (``9``) or name (``KILL``, ``SIGKILL``, ``sigkill``, ``RTMIN+3``)."""
    if _INTEGER.match(raw.strip()):
        number = int(raw.strip())
        if number == 0:
            raise InvalidArgument(f"invalid signal: {quoted(raw)[1:-1]}")
    else:
        found = SIGNALS.get(raw.strip().upper().removeprefix("SIG"))
        if found is None:
            raise InvalidArgument(
                f"invalid signal: {quoted(raw)[1:-1]} (give {name} as a number or a name)"
            )
        number = found
    if number not in VALID_SIGNALS:
        raise InvalidArgument(f"the linux daemon does not support signal {number}")
    return number


def signal_number(query: Query, name: str = "signal") -> int | None:
    raw = query.get(name)
    return None if raw in (None, "") else parse_signal(raw, name)


def choice(query: Query, name: str, choices: Collection[str], default: str) -> str:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    if raw not in choices:
        raise InvalidArgument(f"invalid {name}: {quoted(raw)} (use {', '.join(choices)})")
    return raw


def wait_condition(query: Query) -> str:
    return choice(query, "condition", WAIT_CONDITIONS, "not-running")


def object_version(query: Query, what: str) -> int:
    """The ``version`` an update is based on, required as Docker requires it."""
    raw = query.get("version", "")
    if not _INTEGER.match(raw) or raw.startswith(("-", "+")) or int(raw) > UINT64_MAX:
        raise InvalidArgument(
            f"invalid {what} version {raw!r}: give the Version.Index of the {what}'s inspect output"
        )
    return int(raw)


def tail(query: Query) -> int | None:
    """``tail``: a number of lines, or ``all`` (None); a negative number means all (Docker)."""
    raw = query.get("tail", "all")
    if raw in ("all", ""):
        return None
    value = parse_integer(raw, "tail")
    return None if value < 0 else value


def output_streams(query: Query) -> frozenset[int]:
    """The output streams a client asked for with ``stdout`` and ``stderr`` (Docker's attach
    and logs parameters, default off): 1 for stdout, 2 for stderr, as in Docker's frames."""
    return frozenset(n for n, key in ((1, "stdout"), (2, "stderr")) if boolean(query, key))


def filters(query: Query, accepted: Collection[str]) -> dict[str, list[str]]:
    """Docker's ``filters``: a JSON object whose values are lists of strings or maps of strings
    to booleans (the values are the keys, whatever the booleans), each key one ``accepted``."""
    raw = query.get("filters", "")
    if not raw:
        return {}
    parsed = loads(raw, "filters")
    if not isinstance(parsed, dict):
        raise InvalidArgument(
            'invalid filter: give a JSON object, e.g. {"name": ["web"]} or {"name": {"web": true}}'
        )
    out: dict[str, list[str]] = {}
    for key, value in parsed.items():
        if key not in accepted:
            raise InvalidArgument(
                f"invalid filter '{quoted(key)[1:-1]}': use {', '.join(sorted(accepted))}"
            )
        values = _filter_values(key, value)
        if values:  # a key without values filters nothing (Docker's ExactMatch)
            out[key] = values
    return out


def _filter_values(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict) and all(isinstance(v, bool) for v in value.values()):
        return list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgument(
        f"invalid filter '{quoted(key)[1:-1]}': give a list of strings or a map of strings to true"
    )
