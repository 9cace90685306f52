"""An in-memory copy of (part of) the cluster store, kept current by a stream of events.

The manager fills one from an etcd watch; each agent fills one from its session stream. Values
are decoded once, on arrival, into domain models by key prefix, so readers get objects without
parsing. Listeners are called after each applied batch with the keys that changed, which is what
drives level-triggered reconcilers ("something under networks/ changed: recompute").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ferry.model.codec import decode, decode_plain

T = TypeVar("T")
Listener = Callable[[frozenset[str]], None]


@dataclass(frozen=True)
class Entry:
    key: str
    raw: Any  # JSON bytes, or an already-parsed JSON value
    obj: Any
    mod_revision: int


class Mirror:
    def __init__(self, types: dict[str, type[Any]]) -> None:
        # longest prefix first, so "nodes/" never shadows a more specific prefix
        self._types = sorted(types.items(), key=lambda kv: -len(kv[0]))
        self._entries: dict[str, Entry] = {}
        self.revision = 0
        self.synced = False
        self._listeners: list[Listener] = []

    def _decode(self, key: str, raw: Any) -> Any:
        for prefix, cls in self._types:
            if key.startswith(prefix):
                return decode(cls, raw) if isinstance(raw, bytes) else decode_plain(cls, raw)
        return None

    def reset(self, items: Iterable[tuple[str, Any, int]], revision: int) -> None:
        """Replace everything with a snapshot; listeners hear about every key that changed.

        A reset always notifies, even when nothing changed, so code waiting for the mirror to
        reach a revision wakes up."""
        old = self._entries
        self._entries = {
            key: Entry(key, raw, self._decode(key, raw), rev) for key, raw, rev in items
        }
        self.revision = revision
        self.synced = True
        changed = {
            k for k in old.keys() | self._entries.keys() if old.get(k) != self._entries.get(k)
        }
        self._notify(frozenset(changed))

    def apply(self, events: Iterable[tuple[str, Any, int]]) -> None:
        """Apply changes; a value of None deletes the key."""
        changed = set()
        for key, raw, rev in events:
            if rev < self.revision:
                continue  # already part of the snapshot we hold
            if raw is None:
                if self._entries.pop(key, None) is not None:
                    changed.add(key)
            else:
                self._entries[key] = Entry(key, raw, self._decode(key, raw), rev)
                changed.add(key)
            self.revision = max(self.revision, rev)
        if changed:
            self._notify(frozenset(changed))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self, changed: frozenset[str]) -> None:
        for listener in list(self._listeners):
            listener(changed)

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def obj(self, key: str, cls: type[T]) -> T | None:
        entry = self._entries.get(key)
        if entry is None or not isinstance(entry.obj, cls):
            return None
        return entry.obj

    def entries(self, prefix: str) -> Iterator[Entry]:
        for key, entry in self._entries.items():
            if key.startswith(prefix):
                yield entry

    def objects(self, prefix: str, cls: type[T]) -> list[T]:
        return [e.obj for e in self.entries(prefix) if isinstance(e.obj, cls)]

    def snapshot(self, keep: Callable[[str], bool]) -> list[Entry]:
        return [e for e in self._entries.values() if keep(e.key)]
