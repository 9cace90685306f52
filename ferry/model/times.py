"""Timestamps as Ferry stores and shows them.

Stored: UTC ISO 8601 ending in ``Z``, as Docker writes them. Shown: Docker's human durations
("Less than a second", "About a minute", "3 hours"), so ``ps`` reads the way people know.
"""

from __future__ import annotations

import datetime as dt
import time


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def epoch(iso: str) -> float:
    """Seconds since the epoch; 0 for an empty timestamp (never set)."""
    if not iso:
        return 0.0
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# past the first hour: (below this many hours, hours per unit, unit), in go-units' order
_LONG = (
    (48, 1, "hours"),
    (24 * 7 * 2, 24, "days"),
    (24 * 30 * 2, 24 * 7, "weeks"),
    (24 * 365 * 2, 24 * 30, "months"),
)


def human_duration(seconds: float) -> str:
    """Docker's HumanDuration (go-units), which ``docker ps`` and ``service ps`` print."""
    whole, minutes, hours = int(seconds), int(seconds) // 60, round(seconds / 3600)
    if whole < 60:
        return {0: "Less than a second", 1: "1 second"}.get(whole, f"{whole} seconds")
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    if hours == 1:
        return "About an hour"
    per, unit = next(
        ((per, unit) for limit, per, unit in _LONG if hours < limit), (24 * 365, "years")
    )
    return f"{hours // per} {unit}"


def since(iso: str, now: float | None = None) -> str:
    """How long ago ``iso`` was, as a human duration."""
    current = time.time() if now is None else now
    return human_duration(max(0.0, current - epoch(iso)))
