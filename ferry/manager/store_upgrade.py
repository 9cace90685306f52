"""Bringing a swarm formed by an older ferryd up to date, on every manager, at its start.

Older swarms kept the cluster CA key in clear in the store, and ran etcd on node certificates
of the cluster CA (so a worker's certificate opened it). A manager of such a swarm, once it runs
this version, converges on its own, level-triggered, without a second restart of ferryd:

1. **Seal.** The first manager to see the clear key makes a KEK and the store CA, keeps the KEK
   on its disk *before* committing (a crash never loses the only key), and replaces the clear
   key with both keys sealed. A manager that loses that race drops its KEK (``Vault.follow``).
2. **Key.** A manager without the KEK asks another manager for it over the cluster API (its
   manager certificate of the cluster CA proves it is one; see ``cluster_api.key_routes``).
3. **Store certificate.** With the KEK it signs its own etcd certificate with the store CA.
4. **TLS phases.** Its etcd member moves through ``etcd_member``'s phases, one restart each,
   and records each in ``storetls/<node>``. ``next_tls_phase`` orders the steps so that every
   pair of members always accepts each other: a single manager goes straight to the last one.

Be aware: until every manager runs this version and has moved, the peer port still accepts the
cluster CA (phases 1-2), and no manager can join (``JoinService`` says why).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from ferry.daemon.logs import kv
from ferry.errors import Unavailable
from ferry.manager import ca, sealing
from ferry.manager.etcd_member import FINAL_TLS_PHASE, EtcdMember
from ferry.manager.feed import StoreFeed
from ferry.manager.join import recorded_tls_phase
from ferry.manager.store import Expect, Put, keys
from ferry.manager.store.etcd import EtcdStore
from ferry.manager.store.view import ClusterView
from ferry.manager.vault import Vault, sealed_secrets
from ferry.model.cluster import ClusterSecrets
from ferry.model.codec import encode
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.manager.upgrade")

STORE_BACK_TIMEOUT_S = 30.0
KeyFetcher = Callable[[], Awaitable[str]]  # another manager's answer: the KEK's text


def next_tls_phase(me: str, phases: dict[str, int | None]) -> int:
    """The TLS phase this manager's etcd should move to now, given every live manager's
    recorded phase (``me`` included; None: no record, a manager still on an older ferryd, at
    phase 0). A member steps up only when the step keeps it compatible with all (phase 1 always
    does; 2 once nobody is below 1; 3 once nobody is below 2), and the members that run this
    version step one at a time, in node id order, each after the one before it recorded its
    step."""
    mine = phases[me] or 0
    if mine >= FINAL_TLS_PHASE:
        return mine
    if len(phases) == 1:
        return FINAL_TLS_PHASE
    if mine >= 1 and min(phase or 0 for phase in phases.values()) < mine:
        return mine
    before = [phase for node_id, phase in phases.items() if node_id < me and phase is not None]
    if any(phase <= mine for phase in before):
        return mine
    return mine + 1


class StoreUpgrade(Reconciler):
    name = "store upgrade"
    retry_s = 2.0
    watched = (keys.SECRETS, keys.STORE_TLS, keys.NODES)

    def __init__(
        self,
        *,
        node_id: str,
        cluster_id: str,
        store: EtcdStore,
        view: ClusterView,
        feed: StoreFeed,
        vault: Vault,
        member: EtcdMember,
        fetch_key: KeyFetcher | None,
    ) -> None:
        super().__init__(view.mirror)
        self._node_id = node_id
        self._cluster_id = cluster_id
        self._store = store
        self._view = view
        self._feed = feed
        self._vault = vault
        self._member = member
        self._fetch_key = fetch_key

    async def reconcile(self) -> None:
        secrets = self._view.mirror.obj(keys.SECRETS, ClusterSecrets)
        if secrets is None:
            return
        if not secrets.sealed:
            await self._seal(secrets)
            return  # the next pass starts from what the store now says
        if self._vault.locked:
            if secrets.autolock or self._fetch_key is None:
                return  # an autolocked swarm waits for 'swarm unlock'
            self._vault.unlock(await self._fetch_key(), secrets)
            log.info("unlock key received from another manager")
        certs = self._member.config.certs
        if not certs.have_store():
            self._sign_own_store_cert(certs, secrets)
        await self._advance()

    async def _seal(self, secrets: ClusterSecrets) -> None:
        cluster = self._view.cluster()
        if cluster is None:
            return
        kek = sealing.new_kek()
        store_ca = ca.create_ca(self._cluster_id, ca.STORE_CA_NAME)
        sealed = sealed_secrets(
            secrets, kek, ca_key_pem=secrets.ca_key_pem.encode(), store_ca=store_ca, autolock=False
        )
        self._vault.hold(kek, persist=True)  # on disk before the clear key goes
        version = self._view.entity_version(keys.SECRETS)
        revision = await self._store.commit(
            [Put(keys.SECRETS, encode(sealed))], [Expect(keys.SECRETS, version)]
        )
        if revision is not None:
            log.info("the CA key is sealed now; the store has a CA of its own")
            await self._feed.wait_for(revision)

    def _sign_own_store_cert(self, certs: ca.CertPaths, secrets: ClusterSecrets) -> None:
        key_pem = ca.new_key_pem()
        ips = [self._member.config.advertise_addr, "127.0.0.1"]
        cert = ca.sign_store_member(
            self._vault.store_ca_pair(secrets),
            ca.make_csr(key_pem),
            self._node_id,
            self._cluster_id,
            ips,
        )
        certs.write_store(secrets.store_ca_cert_pem.encode(), cert, key_pem)
        log.info("store certificate made", extra=kv(node=self._node_id))

    async def _advance(self) -> None:
        config = self._member.config
        if recorded_tls_phase(self._view, self._node_id) != config.tls_phase:
            await self._record(config.tls_phase)  # a record also says: this version runs here
        phases: dict[str, int | None] = {
            n.node_id: recorded_tls_phase(self._view, n.node_id)
            for n in self._view.managers()
            if not n.left
        }
        phases[self._node_id] = config.tls_phase  # what runs is the truth
        target = next_tls_phase(self._node_id, phases)
        if target == config.tls_phase:
            return
        log.info("moving the store's TLS", extra=kv(phase=config.tls_phase, to=target))
        moved = replace(config, tls_phase=target)
        await self._member.restart(moved)
        tls = moved.client_tls
        await self._store.reconnect(
            tls.ca.read_bytes(), tls.cert.read_bytes(), tls.key.read_bytes()
        )
        await self._wait_store()
        await self._record(target)

    async def _wait_store(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STORE_BACK_TIMEOUT_S
        while True:
            try:
                await self._store.get(keys.CLUSTER)
                self._member.healthy()
                return
            except Unavailable:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _record(self, phase: int) -> None:
        revision = await self._store.commit([Put(keys.store_tls(self._node_id), encode(phase))])
        if revision is not None:
            await self._feed.wait_for(revision)
