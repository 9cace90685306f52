"""The daemon's event bus (``GET /events``, ``docker events``): every part publishes what it did,
the events route replays the history and streams what follows.

An event has Docker's shape (moby ``api/types/events.Message``): ``Type``, ``Action``,
``Actor{ID, Attributes}``, ``scope``, ``time`` (s) and ``timeNano`` (ns), and for containers
and images the old ``status``/``id``/``from`` fields the API still sends.

Service and node events (scope ``swarm``) are published by every manager from its mirror of
the store (``manager/swarm_events.py``), whoever made the change; workers have none, as in
Docker. Be aware: the history is in memory and bounded (``HISTORY_EVENTS``, the newest kept), so
``since`` reaches back only that far and not past a restart of ferryd, as Docker's own
in-memory log (moby ``daemon/events``, 256 events) does. A subscriber that falls
``QUEUE_EVENTS`` behind is dropped: its stream ends rather than the daemon buffering without
bound.

Matching follows moby ``daemon/events/filter.go``: ``type``, ``scope`` and ``event`` exact
(``event=health_status`` also matches ``health_status: healthy``), object keys (``container``,
``network``, ``volume``, ``service``, ``node``, ``daemon``) by the actor's id or its ``name``
attribute, exact or as a prefix, ``image`` by id or name with or without the tag, ``label``
over the actor's attributes.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ferry.model import filters as f

HISTORY_EVENTS = 1024
QUEUE_EVENTS = 4096
EVENT_FILTERS = (
    "config", "container", "daemon", "event", "image", "label", "network", "node", "scope",
    "secret", "service", "type", "volume",
)  # fmt: skip
EVENT_TYPES = (
    "config", "container", "daemon", "image", "network", "node", "secret", "service", "volume",
)  # fmt: skip
NAMED_TYPES = ("config", "container", "daemon", "network", "node", "secret", "service", "volume")
FUZZY_ACTIONS = ("health_status", "exec_create", "exec_start")  # moby #25798


@dataclass(frozen=True)
class Event:
    type: str
    action: str
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    scope: str = "local"
    time_ns: int = 0

    def doc(self) -> dict[str, Any]:
        """Docker's ``events.Message``."""
        out: dict[str, Any] = {}
        if self.type in ("container", "image"):
            out = {"status": self.action, "id": self.actor_id}
            if "image" in self.attributes:
                out["from"] = self.attributes["image"]
        return out | {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": self.scope,
            "time": self.time_ns // 1_000_000_000,
            "timeNano": self.time_ns,
        }


def included(event: Event, filters: f.Filters) -> bool:
    """Whether ``event`` passes Docker's event filters (keys checked against EVENT_FILTERS)."""
    attrs = event.attributes
    name = attrs.get("name", "")
    actions = filters.get("event", [])
    if any(a in FUZZY_ACTIONS for a in actions):
        action_ok = f.prefix(actions, event.action)
    else:
        action_ok = not actions or event.action in actions
    image_name = attrs.get("name" if event.type == "image" else "image", "")
    images = filters.get("image", [])
    image_ok = not images or f.exact(
        images, event.actor_id, image_name, _untagged(event.actor_id), _untagged(image_name)
    )
    named_ok = all(
        not filters.get(kind) or f.prefix(filters[kind], event.actor_id, name)
        for kind in NAMED_TYPES
    )
    return (
        action_ok
        and image_ok
        and named_ok
        and (not filters.get("type") or event.type in filters["type"])
        and (not filters.get("scope") or event.scope in filters["scope"])
        and f.labels(filters.get("label", []), attrs)
    )


def _untagged(ref: str) -> str:
    """moby's ``stripTag``: the reference without its ``:TAG`` (a registry's port stays)."""
    head, sep, tail = ref.rpartition(":")
    return head if sep and "/" not in tail and "@" not in ref else ref


class EventBus:
    """One per daemon: ``publish`` from any part, ``history``/``subscribe`` for readers."""

    def __init__(self, history: int = HISTORY_EVENTS, queue: int = QUEUE_EVENTS) -> None:
        self._history: collections.deque[Event] = collections.deque(maxlen=history)
        self._queue = queue
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._last_ns = 0

    def publish(
        self,
        type_: str,
        action: str,
        actor_id: str,
        attributes: Mapping[str, str] | None = None,
        scope: str = "local",
    ) -> Event:
        now = max(time.time_ns(), self._last_ns + 1)  # strictly increasing: since/until hold
        self._last_ns = now
        event = Event(type_, action, actor_id, dict(attributes or {}), scope, now)
        self._history.append(event)
        for queue in list(self._subscribers):
            if queue.qsize() >= self._queue - 1:
                self._subscribers.discard(queue)  # too far behind: its stream ends
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)
        return event

    def history(self, since_ns: int, until_ns: int | None = None) -> list[Event]:
        """The kept events from ``since_ns`` up to ``until_ns`` (both included), oldest first."""
        return [
            e
            for e in self._history
            if e.time_ns >= since_ns and (until_ns is None or e.time_ns <= until_ns)
        ]

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event | None]]:
        """A queue of the events published from now on; None when the subscriber was dropped."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
