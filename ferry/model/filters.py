"""Docker's list filters, matched as Docker matches them: one module for every list endpoint.

A request's ``filters`` (decoded and key-checked by ``ferry.api.params.filters``) is a map of
keys to lists of alternatives. A key holds when any of its values matches; an object is listed
when every key holds (moby ``api/types/filters.Args``). The rules differ by key, and follow
Docker's, not a guess:

- ``pattern``: Docker's ``Args.Match``, an exact match or a regular-expression search (an invalid
  expression matches nothing): container and network ``name``/``id``, volume ``name``;
- ``prefix``: swarmkit's ``NamePrefixes``/``IDPrefixes``: service, task and node ``name``/``id``;
- ``exact``: Docker's ``ExactMatch``: ``driver``, ``scope``, ``mode``, ``role``, ...;
- ``labels``: Docker's ``MatchKVList``: every ``KEY`` present and every ``KEY=VALUE`` holds;
  ``label!`` (prune) is its negation: none of them holds.

Be aware: ``matches`` wants a rule for every key given, so a key an endpoint accepts but does
not match is a programming error (``KeyError``), never a silently wider listing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping

from ferry.errors import InvalidArgument
from ferry.model.times import epoch

Filters = Mapping[str, list[str]]
Rule = Callable[[list[str]], bool]

TRUE_WORDS = ("1", "true")
FALSE_WORDS = ("0", "false")
PORT_RANGE = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?$")


def matches(filters: Filters, rules: Mapping[str, Rule]) -> bool:
    """Whether every filter key holds, each by its rule in ``rules``."""
    return all(rules[key](values) for key, values in filters.items())


def pattern(values: Iterable[str], *sources: str) -> bool:
    """Docker's ``Args.Match``: a value equal to a source, or a regular expression found in it."""
    for value in values:
        for source in sources:
            if value == source:
                return True
            try:
                if re.search(value, source):
                    return True
            except re.error:
                continue  # moby skips a value that is not a valid expression
    return False


def prefix(values: Iterable[str], *sources: str) -> bool:
    """swarmkit's prefix filters (``NamePrefixes``, ``IDPrefixes``)."""
    return any(source.startswith(value) for value in values for source in sources)


def exact(values: Iterable[str], *sources: str) -> bool:
    return any(value in sources for value in values)


def labels(values: Iterable[str], have: Mapping[str, str]) -> bool:
    """Docker's ``MatchKVList``: every ``KEY`` is present and every ``KEY=VALUE`` holds."""
    for item in values:
        key, sep, value = item.partition("=")
        if key not in have or (sep and have[key] != value):
            return False
    return True


def no_labels(values: Iterable[str], have: Mapping[str, str]) -> bool:
    """Docker's ``label!`` (prune): none of the ``KEY`` or ``KEY=VALUE`` holds."""
    return not any(labels([item], have) for item in values)


def invalid(key: str, value: str) -> InvalidArgument:
    """Docker's ``invalidFilter`` error: ``invalid filter 'KEY=VALUE'``."""
    return InvalidArgument(f"invalid filter '{key}={value}'")


def flag(filters: Filters, key: str) -> bool | None:
    """A boolean filter (``dangling``, ``is-task``): None when absent; one of ``true``/``1``,
    ``false``/``0`` else Docker's refusal."""
    values = filters.get(key)
    if not values:
        return None
    if len(set(values)) > 1:
        raise InvalidArgument(f'got more than one value for filter key "{key}"')
    if values[0] in TRUE_WORDS:
        return True
    if values[0] in FALSE_WORDS:
        return False
    raise InvalidArgument(
        f'invalid value for filter \'{key}\', must be "true" (or "1"), or "false" (or "0")'
    )


def one_of(filters: Filters, key: str, allowed: Iterable[str]) -> None:
    """Refuse a value of ``key`` outside ``allowed`` (``status``, ``mode``, ``role``, ...)."""
    known = tuple(allowed)
    for value in filters.get(key, []):
        if value not in known:
            raise InvalidArgument(f"invalid filter '{key}={value}': use {key}={', '.join(known)}")


def integers(filters: Filters, key: str) -> list[int]:
    """An integer filter (``exited``): the values, else ``invalid filter 'KEY=VALUE'``."""
    out = []
    for value in filters.get(key, []):
        if not re.fullmatch(r"-?[0-9]{1,10}", value):
            raise invalid(key, value)
        out.append(int(value))
    return out


def port_ranges(filters: Filters, key: str) -> list[tuple[int, int, str]]:
    """``publish``/``expose``: ``PORT[/PROTO]`` or ``START-END[/PROTO]`` (Docker's
    ``nat.ParsePortRange``; the protocol defaults to tcp) as (start, end, protocol)."""
    out = []
    for value in filters.get(key, []):
        found = PORT_RANGE.match(value)
        if found is None:
            raise invalid(key, value)
        start = int(found.group(1))
        end = int(found.group(2) or start)
        if not 0 < start <= end <= 65535:
            raise invalid(key, value)
        out.append((start, end, found.group(3) or "tcp"))
    return out


def in_ranges(ranges: list[tuple[int, int, str]], ports: Iterable[tuple[int, str]]) -> bool:
    """Whether any (port, protocol) lies in any of ``ranges``."""
    return any(
        start <= port <= end and proto == want
        for port, proto in ports
        for start, end, want in ranges
    )


def until_s(value: str) -> float:
    """Docker's ``until``: a Unix time, an RFC 3339 time, or a duration before now (``24h``)."""
    units = {"s": 1, "m": 60, "h": 3600}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        now = dt.datetime.now(dt.UTC).timestamp()
        return now - float(value[:-1]) * units[value[-1]]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return epoch(value)
    except ValueError as exc:
        raise InvalidArgument(
            f"invalid filter 'until={value}': use 24h, a Unix time or RFC 3339"
        ) from exc
