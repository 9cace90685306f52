"""The cluster store: a small protocol over etcd (and an in-memory twin for tests)."""

from ferry.manager.store.base import Delete, Event, Expect, KeyValue, MemberStatus, Put, Store

__all__ = ["Delete", "Event", "Expect", "KeyValue", "MemberStatus", "Put", "Store"]
