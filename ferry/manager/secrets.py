"""Swarm secrets and configs in the store: create, find, relabel, remove (one ``ObjectOps`` per
kind).

Design notes. A secret's data is sealed before it reaches the store: AES-256-GCM
(``sealing.seal``) with the swarm's *data key*, bound to the secret's id (the associated
data), so a sealed value copied under another secret does not open. The data key is made with
the first secret and kept in the cluster's own secrets record sealed with the KEK, as the CA
keys are (``vault.py``): only managers hold the KEK, a locked manager opens nothing, and a KEK
rotation reseals the one data key, never each secret. Configs are kept as given (base64): Docker
does not treat them as secret.

Neither prefix is streamed to workers (``keys.STREAMED``; ``projection.share`` withholds them
too): a worker holds a secret or a config only while it runs a task that names it, fetched
for that task from a manager (``task_files`` below, ``agent/task_files.py``) and kept in memory
and on a tmpfs, never on disk. An object a service names cannot be removed (object_refs.py).

A name is unique per kind because creating an object is also a create-if-absent of its name
key (``secretnames/<name>``): two managers creating one name at once cannot both win.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import replace

from ferry.errors import Conflict, NotFound
from ferry.manager import object_refs, sealing
from ferry.manager.feed import StoreFeed
from ferry.manager.store import Delete, Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.manager.vault import Vault
from ferry.model.cluster import ClusterSecrets
from ferry.model.codec import encode
from ferry.model.ids import lookup, new_object_id
from ferry.model.rules import check_labels
from ferry.model.swarm_objects import (
    Kind,
    SwarmObject,
    check_data,
    check_name,
    check_update,
    config_bytes,
)
from ferry.model.times import now_iso

MAX_ATTEMPTS = 5
SecretsReader = Callable[[], Awaitable[tuple[ClusterSecrets, int]]]


class ObjectOps:
    """The secrets or the configs of the swarm (``kind``), as a manager changes them."""

    def __init__(
        self,
        kind: Kind,
        *,
        store: Store,
        view: ClusterView,
        feed: StoreFeed,
        vault: Vault,
        cluster_secrets: SecretsReader,
    ) -> None:
        """``cluster_secrets``: the cluster's secrets record read from the store itself, with
        its version (``NodeOps.secrets``)."""
        self.kind = kind
        self._store = store
        self._view = view
        self._feed = feed
        self._vault = vault
        self._cluster_secrets = cluster_secrets
        secret = kind == Kind.SECRET
        self._prefix = keys.SWARM_SECRETS if secret else keys.CONFIGS
        self._names = keys.SECRET_NAMES if secret else keys.CONFIG_NAMES

    # lookups ---------------------------------------------------------------------------------
    def all(self) -> list[SwarmObject]:
        return sorted(self._view.mirror.objects(self._prefix, SwarmObject), key=lambda o: o.name)

    def find(self, ref: str) -> SwarmObject:
        """By id, name or unambiguous id prefix; NotFound in Docker's words."""
        found = lookup(self.all(), ref, lambda o: (o.obj_id, o.name), self.kind.value)
        if found is None:
            raise NotFound(f"{self.kind.value} {ref} not found")
        return found

    def version(self, obj: SwarmObject) -> int:
        return self._view.entity_version(self._prefix + obj.obj_id)

    # changes ---------------------------------------------------------------------------------
    async def create(self, name: str, data: bytes, labels: dict[str, str]) -> SwarmObject:
        """A new object; InvalidArgument for a bad name, data or label, Conflict (Docker's
        AlreadyExists) when the name is taken, SwarmLocked (a secret) while locked."""
        check_name(name)
        check_data(self.kind, data)
        check_labels(labels)
        if any(o.name == name for o in self.all()):
            raise self._exists(name)
        obj_id = new_object_id()
        if self.kind == Kind.SECRET:
            kept = sealing.seal(await self._data_key(), data, sealing.secret_purpose(obj_id))
        else:
            kept = base64.b64encode(data).decode()
        now = now_iso()
        obj = SwarmObject(obj_id, name, kept, dict(labels), created_at=now, updated_at=now)
        revision = await self._store.commit(
            [Put(self._prefix + obj_id, encode(obj)), Put(self._names + name, encode(obj_id))],
            [Expect(self._prefix + obj_id, 0), Expect(self._names + name, 0)],
        )
        if revision is None:
            raise self._exists(name)
        await self._feed.wait_for(revision)
        return obj

    async def update(
        self, ref: str, version: int, name: str, data: bytes | None, labels: dict[str, str]
    ) -> SwarmObject:
        """New labels for the object at store ``version``; InvalidArgument for any other change
        (Docker's "only updates to Labels are allowed"), Conflict when it changed meanwhile."""
        obj = self.find(ref)
        if data is None:
            held = b""
        else:
            held = self.secret_data(obj) if self.kind == Kind.SECRET else config_bytes(obj)
        check_update(obj, name, data, held)
        check_labels(labels)
        current = self.version(obj)
        if version != current:
            raise Conflict(
                f"update out of sequence: {self.kind.value} {obj.name} is at version {current}, "
                f"not {version}; inspect it again and retry"
            )
        updated = replace(obj, labels=dict(labels), updated_at=now_iso())
        revision = await self._store.commit(
            [Put(self._prefix + obj.obj_id, encode(updated))],
            [Expect(self._prefix + obj.obj_id, current)],
        )
        if revision is None:
            raise Conflict(f"{self.kind.value} {obj.name} changed meanwhile; retry")
        await self._feed.wait_for(revision)
        return updated

    async def remove(self, ref: str) -> SwarmObject:
        """Remove the object and free its name. NotFound if there is none; InvalidArgument in
        swarmkit's words while a service's spec names it (see object_refs.py for how a
        service created meanwhile cannot slip past)."""
        for _ in range(MAX_ATTEMPTS):
            obj = self.find(ref)
            names = object_refs.users(self._view.services(), obj.obj_id)
            if names:
                raise object_refs.in_use(self.kind, obj.name, names)
            uses = keys.OBJECT_USES + obj.obj_id
            revision = await self._store.commit(
                [Delete(self._prefix + obj.obj_id), Delete(self._names + obj.name),
                 Delete(uses)],
                [Expect(uses, self._view.entity_version(uses))],
            )  # fmt: skip
            if revision is not None:
                await self._feed.wait_for(revision)
                return obj
            _, now = await self._store.list_prefix(uses)  # the store's revision: catch up
            await self._feed.wait_for(now)
        raise Conflict(f"{self.kind.value} {ref} keeps being taken by services; retry")

    def secret_data(self, obj: SwarmObject) -> bytes:
        """A secret's data, opened (what delivering it to a task's node will send);
        SwarmLocked while locked, NotFound if the swarm has no data key."""
        secrets = self._view.mirror.obj(keys.SECRETS, ClusterSecrets)
        key = self._vault.data_key(secrets) if secrets is not None else None
        if key is None:
            raise NotFound("this swarm has no key for secrets' data")
        return sealing.unseal(key, obj.data, sealing.secret_purpose(obj.obj_id))

    # the data key ----------------------------------------------------------------------------
    async def _data_key(self) -> bytes:
        """The swarm's key for secrets' data, made (sealed with the KEK) on first use."""
        for _ in range(MAX_ATTEMPTS):
            secrets, version = await self._cluster_secrets()
            held = self._vault.data_key(secrets)
            if held is not None:
                return held
            kek = self._vault.kek()
            if sealing.key_id(kek) != secrets.kek_id:
                raise Conflict("the swarm's unlock key is changing; retry")
            key = sealing.new_kek()
            sealed = replace(secrets, data_key_sealed=sealing.seal(kek, key, sealing.DATA_KEY))
            revision = await self._store.commit(
                [Put(keys.SECRETS, encode(sealed))], [Expect(keys.SECRETS, version)]
            )
            if revision is not None:
                await self._feed.wait_for(revision)
                return key
        raise Conflict("the swarm's keys keep changing while a secret is created; retry")

    def _exists(self, name: str) -> Conflict:
        return Conflict(
            f"rpc error: code = AlreadyExists desc = {self.kind.value} {name} already exists"
        )
