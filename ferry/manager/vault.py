"""The key-encryption key (KEK) as one manager holds it, and what it opens.

Design notes. The store holds the cluster CA key and the store CA key sealed with the KEK
(``sealing.py``); a manager needs them to admit nodes and managers. Without autolock the KEK is
also on disk (``certs/kek``, 0600), so a restarted manager holds it again at once; with autolock
it is only ever in memory: a restarted manager is *locked* until ``swarm unlock`` gives it the
key (Docker's ``--autolock``). Managers learn a rotated KEK from the store: the new KEK is kept
there sealed with the previous one, which every manager holds (``follow``).

What a locked manager does, after Docker's: it issues no certificates and admits nobody, and
its local API answers every management call with Docker's "Swarm is encrypted and needs to be
unlocked…". Unlike Docker's (whose Raft log is encrypted with the key), its etcd member, its
agent and so its containers and data plane keep running: nothing of those is sealed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ferry.daemon.files import write_atomic
from ferry.daemon.logs import kv
from ferry.errors import Conflict, Forbidden, NotFound, SwarmLocked, Unavailable
from ferry.manager import ca, sealing
from ferry.manager.feed import StoreFeed
from ferry.manager.nodes import NodeOps
from ferry.manager.store import Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.cluster import ClusterInfo, ClusterSecrets
from ferry.model.codec import encode

log = logging.getLogger("ferry.manager.vault")


class Vault:
    def __init__(self, kek_path: Path) -> None:
        self._path = kek_path
        self._kek: bytes | None = None

    @property
    def locked(self) -> bool:
        return self._kek is None

    def load(self) -> None:
        """Hold the KEK kept on disk, if there is one (a swarm without autolock)."""
        try:
            self._kek = sealing.parse_key(self._path.read_text())
        except FileNotFoundError:
            self._kek = None

    def kek(self) -> bytes:
        if self._kek is None:
            raise SwarmLocked()
        return self._kek

    def hold(self, kek: bytes, *, persist: bool) -> None:
        """Hold ``kek``; keep it on disk only if ``persist`` (no autolock)."""
        self._kek = kek
        if persist:
            write_atomic(self._path, sealing.format_key(kek).encode(), 0o600)
        else:
            self._path.unlink(missing_ok=True)

    def forget(self) -> None:
        self._kek = None
        self._path.unlink(missing_ok=True)

    # what it opens ---------------------------------------------------------------------------
    def ca_pair(self, cluster: ClusterInfo, secrets: ClusterSecrets) -> ca.KeyPair:
        """The cluster CA, to sign node certificates; SwarmLocked while locked."""
        if secrets.ca_key_pem:  # a swarm formed before sealing, not yet migrated
            return ca.KeyPair(cluster.ca_cert_pem.encode(), secrets.ca_key_pem.encode())
        key = sealing.unseal(self.kek(), secrets.ca_key_sealed, sealing.CLUSTER_CA_KEY)
        return ca.KeyPair(cluster.ca_cert_pem.encode(), key)

    def signing_pair(self, cluster: ClusterInfo, secrets: ClusterSecrets) -> ca.KeyPair:
        """The CA that signs node certificates now: the swarm's root, or the new root once a
        root rotation has reached its signing step (``model/root_rotation.py``); SwarmLocked
        while locked."""
        rotation = cluster.root_rotation
        key = self.rotation_key(secrets)
        if rotation is not None and rotation.signing and key is not None:
            return ca.KeyPair(rotation.ca_cert_pem.encode(), key)
        return self.ca_pair(cluster, secrets)

    def rotation_key(self, secrets: ClusterSecrets) -> bytes | None:
        """The new root's key during a root rotation, None otherwise; SwarmLocked while
        locked."""
        if not secrets.rotation_ca_key_sealed:
            return None
        return sealing.unseal(self.kek(), secrets.rotation_ca_key_sealed, sealing.ROTATION_CA_KEY)

    def store_ca_pair(self, secrets: ClusterSecrets) -> ca.KeyPair:
        """The store CA, to sign managers' etcd certificates; SwarmLocked while locked."""
        if not secrets.store_ca_key_sealed:
            raise Unavailable(
                "this swarm's store has no CA of its own yet (formed by an older ferryd): "
                "restart its managers with this version first"
            )
        key = sealing.unseal(self.kek(), secrets.store_ca_key_sealed, sealing.STORE_CA_KEY)
        return ca.KeyPair(secrets.store_ca_cert_pem.encode(), key)

    def data_key(self, secrets: ClusterSecrets) -> bytes | None:
        """The key sealing swarm secrets' data, None before the first secret; SwarmLocked
        while locked."""
        if not secrets.data_key_sealed:
            return None
        return sealing.unseal(self.kek(), secrets.data_key_sealed, sealing.DATA_KEY)

    # keeping up with the store ---------------------------------------------------------------
    def unlock(self, key_text: str, secrets: ClusterSecrets) -> None:
        """Take the key a user gives (``swarm unlock``): the current KEK, or the previous one
        within a rotation. InvalidArgument if it is no key; WrongUnlockKey if it opens
        nothing."""
        kek = self._current(sealing.parse_key(key_text), secrets)
        if kek is None:
            raise sealing.WrongUnlockKey()
        sealing.unseal(kek, secrets.ca_key_sealed, sealing.CLUSTER_CA_KEY)  # proves it opens
        self.hold(kek, persist=not secrets.autolock)

    def follow(self, secrets: ClusterSecrets) -> None:
        """Bring what this manager holds in line with the store after a change: a rotated KEK
        (opened with the one held), on disk or not as autolock says. A key that opens nothing
        any more (two rotations missed) is dropped: the manager is locked until unlocked."""
        if self._kek is None or not secrets.sealed:
            return
        kek = self._current(self._kek, secrets)
        if kek is None:
            log.warning(
                "the unlock key held here is no longer the swarm's: locked until 'swarm unlock'",
                extra=kv(kek=secrets.kek_id),
            )
            self.forget()
            return
        if kek != self._kek or self._path.exists() == secrets.autolock:
            self.hold(kek, persist=not secrets.autolock)

    @staticmethod
    def _current(kek: bytes, secrets: ClusterSecrets) -> bytes | None:
        held = sealing.key_id(kek)
        if held == secrets.kek_id:
            return kek
        if held == secrets.rekey_from and secrets.rekey_sealed:
            return sealing.unseal(kek, secrets.rekey_sealed, sealing.NEXT_KEK)
        return None


def hand_over(vault: Vault, view: ClusterView, node_id: str, role: str) -> str:
    """The KEK's text for another manager that lacks it (store_upgrade.py), asking with its
    node certificate (``node_id``, ``role``). Forbidden unless it is a manager still in the
    swarm, and in an autolocked swarm at all: there only ``swarm unlock`` gives the key, so a
    copy of a manager's disk (its node key) cannot fetch it."""
    node = view.node(node_id)
    if role != "manager" or node is None or node.left or node.role != "manager":
        raise Forbidden("only a manager of this swarm gets the unlock key")
    secrets = view.mirror.obj(keys.SECRETS, ClusterSecrets)
    if secrets is None or secrets.autolock:
        raise Forbidden(
            "this swarm is autolocked: a manager gets its unlock key from 'swarm unlock' only"
        )
    return sealing.format_key(vault.kek())


def sealed_secrets(
    secrets: ClusterSecrets,
    kek: bytes,
    *,
    ca_key_pem: bytes,
    store_ca: ca.KeyPair,
    autolock: bool,
    previous: bytes | None = None,
    data_key: bytes | None = None,
    rotation_ca_key: bytes | None = None,
) -> ClusterSecrets:
    """``secrets`` with both CA keys (and the ``data_key`` of swarm secrets, if the swarm has
    one, and the new root's key during a root CA rotation) sealed with ``kek`` (and, after a
    KEK rotation, ``kek`` sealed with the ``previous`` one); the clear key of an older swarm
    is dropped."""
    rekey_from, rekey_sealed = "", ""
    if previous is not None and previous != kek:
        rekey_from = sealing.key_id(previous)
        rekey_sealed = sealing.seal(previous, kek, sealing.NEXT_KEK)
    return ClusterSecrets(
        worker_secret=secrets.worker_secret,
        manager_secret=secrets.manager_secret,
        ca_key_sealed=sealing.seal(kek, ca_key_pem, sealing.CLUSTER_CA_KEY),
        store_ca_cert_pem=store_ca.cert_pem.decode(),
        store_ca_key_sealed=sealing.seal(kek, store_ca.key_pem, sealing.STORE_CA_KEY),
        kek_id=sealing.key_id(kek),
        autolock=autolock,
        rekey_from=rekey_from,
        rekey_sealed=rekey_sealed,
        data_key_sealed=sealing.seal(kek, data_key, sealing.DATA_KEY) if data_key else "",
        rotation_ca_key_sealed=(
            sealing.seal(kek, rotation_ca_key, sealing.ROTATION_CA_KEY) if rotation_ca_key else ""
        ),
    )


class KeyOps:
    """Changes to the KEK a manager makes for the swarm: rotation and autolock (Docker's
    ``swarm unlock-key --rotate`` and ``swarm update --autolock``)."""

    def __init__(
        self, store: Store, view: ClusterView, feed: StoreFeed, vault: Vault, nodes: NodeOps
    ) -> None:
        self._store = store
        self._view = view
        self._feed = feed
        self._vault = vault
        self.secrets = nodes.secrets  # read from the store itself, with their version

    async def rotate(self) -> None:
        """A new KEK seals the CA keys; the old one stays able to open it for managers that
        held it (one rotation back)."""
        secrets, version = await self.secrets()
        await self._reseal(secrets, version, autolock=secrets.autolock, rotate=True)

    async def set_autolock(self, on: bool) -> None:
        """Turning autolock on makes a new key, as Docker does (the old one was on disk);
        turning it off puts the current one back on every manager's disk."""
        secrets, version = await self.secrets()
        if on != secrets.autolock:
            await self._reseal(secrets, version, autolock=on, rotate=on)

    async def _reseal(
        self, secrets: ClusterSecrets, version: int, *, autolock: bool, rotate: bool
    ) -> None:
        cluster = self._view.cluster()
        if cluster is None:
            raise NotFound("cluster record is missing from the store")
        old = self._vault.kek()
        kek = sealing.new_kek() if rotate else old
        updated = sealed_secrets(
            secrets,
            kek,
            ca_key_pem=self._vault.ca_pair(cluster, secrets).key_pem,
            store_ca=self._vault.store_ca_pair(secrets),
            autolock=autolock,
            previous=old,
            data_key=self._vault.data_key(secrets),
            rotation_ca_key=self._vault.rotation_key(secrets),
        )
        if not rotate:  # same key: whoever could follow a rotation still can
            updated = replace(
                updated, rekey_from=secrets.rekey_from, rekey_sealed=secrets.rekey_sealed
            )
        revision = await self._store.commit(
            [Put(keys.SECRETS, encode(updated))], [Expect(keys.SECRETS, version)]
        )
        if revision is None:
            raise Conflict("the swarm's keys changed meanwhile; retry")
        self._vault.hold(kek, persist=not autolock)
        await self._feed.wait_for(revision)
        log.info("swarm keys changed", extra=kv(rotated=rotate, autolock=autolock))
