"""A manager node's control plane, wired: etcd member, store, mirror, API on 2377, leadership.

Start-up order matters: etcd first (the store), then the mirror (so every reader has state),
then leadership and the cluster API (which read the mirror). Stop in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable

from ferry.daemon.logs import kv
from ferry.errors import FerryError, Unavailable
from ferry.manager.ca import CertPaths
from ferry.manager.cluster_api import (
    PORT,
    ClusterApi,
    RouteAdder,
    attachment_routes,
    doctor_routes,
    key_routes,
    log_routes,
    server_context,
    task_routes,
)
from ferry.manager.doctor import DoctorRelay
from ferry.manager.etcd_member import EtcdConfig, EtcdMember
from ferry.manager.feed import StoreFeed
from ferry.manager.join import JoinService
from ferry.manager.leader import LeaderElection
from ferry.manager.logs import LogRelay
from ferry.manager.networks import NetworkOps
from ferry.manager.nodes import NodeOps
from ferry.manager.pinning import DigestResolver, no_registry
from ferry.manager.quorum import QuorumWatch
from ferry.manager.reconciler import ServiceReconciler
from ferry.manager.root_rotation import RootRotations, rotation_loop
from ferry.manager.secrets import ObjectOps
from ferry.manager.services import ServiceOps
from ferry.manager.sessions import SessionHub
from ferry.manager.store import keys
from ferry.manager.store.etcd import EtcdMembers, EtcdStore
from ferry.manager.store.schema import MANAGER_TYPES
from ferry.manager.store.view import ClusterView
from ferry.manager.store_cert_renewal import StoreCertRenewal
from ferry.manager.store_members import MemberReconciler
from ferry.manager.store_upgrade import KeyFetcher, StoreUpgrade
from ferry.manager.task_files import TaskFiles
from ferry.manager.vault import KeyOps, Vault
from ferry.model.cluster import ClusterSecrets
from ferry.model.mirror import Mirror
from ferry.model.swarm_objects import Kind

log = logging.getLogger("ferry.manager")

STORE_READY_TIMEOUT_S = 30.0


class StoreMemberRemoved(Unavailable):
    """This manager's etcd member is no member of the store any more (etcd said so)."""


class Manager:
    def __init__(
        self,
        node_id: str,
        cluster_id: str,
        certs: CertPaths,
        etcd_config: EtcdConfig,
        vault: Vault,
        *,
        fetch_key: KeyFetcher | None = None,
        resolve: DigestResolver = no_registry,
    ) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.certs = certs
        self.vault = vault
        self.etcd = EtcdMember(etcd_config)
        tls = etcd_config.client_tls
        self.store = EtcdStore(
            etcd_config.client_endpoint,
            tls.ca.read_bytes(),
            tls.cert.read_bytes(),
            tls.key.read_bytes(),
        )
        self.members = EtcdMembers(self.store)
        self.mirror = Mirror(MANAGER_TYPES)
        self.view = ClusterView(self.mirror)
        self.feed = StoreFeed(self.store, self.mirror)
        self.nodes = NodeOps(self.store, self.view, self.feed)
        self.joins = JoinService(self.store, self.members, self.view, self.nodes, vault)
        self.keys = KeyOps(self.store, self.view, self.feed, vault, self.nodes)
        self.mirror.subscribe(self._secrets_changed)
        self.networks = NetworkOps(self.store, self.view, self.feed)
        self.swarm_secrets, self.configs = (
            ObjectOps(
                kind,
                store=self.store,
                view=self.view,
                feed=self.feed,
                vault=vault,
                cluster_secrets=self.nodes.secrets,
            )
            for kind in (Kind.SECRET, Kind.CONFIG)
        )
        self.services = ServiceOps(self.store, self.view, self.feed, self.networks, resolve)
        self.reconciler = ServiceReconciler(
            self.store,
            self.view,
            self.feed,
            self.networks,
            term=lambda: self.leader.term,
            fence=lambda: self.leader.term_revision,
        )
        self.logs = LogRelay(self.store, self.view, f"{etcd_config.advertise_addr}:{PORT}")
        self.doctor = DoctorRelay(self.store, self.view, f"{etcd_config.advertise_addr}:{PORT}")
        self.hub = SessionHub(self.store, self.mirror, self.view, node_id)
        self.quorum = QuorumWatch(self.store)
        self.leadership_hooks: list[Callable[[bool], Awaitable[None]]] = []
        self.leader = LeaderElection(self.store, node_id, self._leadership_changed)
        self.store_members = MemberReconciler(self.members, self.view.node)
        self.store_renewal = StoreCertRenewal(certs, vault, self.view, self._reconnect_store)
        self.root_rotations = RootRotations(self.store, self.view, self.feed, vault, self.nodes)
        self.root_rotation_loop = rotation_loop(self.root_rotations)
        self.upgrade = StoreUpgrade(
            node_id=node_id,
            cluster_id=cluster_id,
            store=self.store,
            view=self.view,
            feed=self.feed,
            vault=vault,
            member=self.etcd,
            fetch_key=fetch_key,
        )
        self.extra_routes: list[RouteAdder] = [
            key_routes(vault, self.view),
            attachment_routes(self.networks),
            task_routes(self.services, TaskFiles(self.view, self.swarm_secrets, self.configs)),
            log_routes(self.logs),
            doctor_routes(self.doctor),
        ]
        self._api: ClusterApi | None = None
        self._server_ssl: ssl.SSLContext | None = None
        self._server_ssl_now: ssl.SSLContext | None = None

    @property
    def locked(self) -> bool:
        """Without the KEK while the CA keys are sealed: a restarted manager of an autolocked
        swarm (until ``swarm unlock``), or one of an older swarm waiting for another manager's
        key (store_upgrade.py). An older swarm's clear key needs none."""
        secrets = self.mirror.obj(keys.SECRETS, ClusterSecrets)
        return self.vault.locked and (secrets is None or secrets.sealed)

    def autolock(self) -> bool:
        secrets = self.mirror.obj(keys.SECRETS, ClusterSecrets)
        return secrets is not None and secrets.autolock

    def _secrets_changed(self, changed: frozenset[str]) -> None:
        """Another manager rotated the key or turned autolock on or off: follow it."""
        if keys.SECRETS in changed:
            secrets = self.mirror.obj(keys.SECRETS, ClusterSecrets)
            if secrets is not None:
                self.vault.follow(secrets)

    async def _leadership_changed(self, leader: bool) -> None:
        if leader:
            self.reconciler.start()
            self.store_members.start()
            self.root_rotation_loop.start()
        else:
            await self.reconciler.stop()
            await self.store_members.stop()
            await self.root_rotation_loop.stop()
        for hook in self.leadership_hooks:
            await hook(leader)

    async def start_store(self, promote: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start (or adopt) the etcd member and wait until it answers. A joining manager's
        member starts as a learner, which answers nothing: ``promote`` makes it a voter first."""
        await self.etcd.start()
        if promote is not None:
            await promote()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STORE_READY_TIMEOUT_S
        while True:
            try:
                await self.store.get(keys.CLUSTER)
                self.etcd.healthy()
                return
            except Unavailable as exc:
                if self.etcd.removed:
                    raise StoreMemberRemoved(
                        "this manager's store member was removed from the swarm's store "
                        "(it was demoted, or the swarm was recovered without it)"
                    ) from exc
                if loop.time() > deadline:
                    raise Unavailable(f"the cluster store did not come up: {exc}") from exc
                await asyncio.sleep(0.1)

    async def start_services(self, listen_addr: str) -> None:
        self.feed.start()
        await self.feed.wait_for(1, timeout_s=STORE_READY_TIMEOUT_S)
        self.quorum.start()
        term = await self.leader.first_step()
        if term:  # readers (agents' snapshots, the API) see this term's record from the start
            await self.feed.wait_for(term)
        self.leader.start()
        self._api = ClusterApi(self.cluster_id, self.hub, self.joins, self.nodes, self.extra_routes)
        self._server_ssl = server_context(self.certs.ca, self.certs.cert, self.certs.key)
        self._server_ssl_now = self._server_ssl
        # each handshake takes the context of the moment (OpenSSL's server name callback runs
        # for every ClientHello, with or without SNI): a new certificate or a new set of
        # trusted roots (a root CA rotation) applies to new connections without a restart
        self._server_ssl.sni_callback = self._pick_ssl_context
        await self._api.start(self.certs.ca.read_text(), listen_addr, self._server_ssl)
        self.upgrade.start()
        self.store_renewal.start()
        log.info("manager started", extra=kv(node=self.node_id, listen=listen_addr))

    def reload_certificate(self) -> None:
        """Serve the cluster API with this node's certificate and trusted roots as they are
        on disk now (renewed, or a root CA rotation's step): new connections get them, open
        ones keep theirs."""
        if self._server_ssl is not None:
            self._server_ssl_now = server_context(self.certs.ca, self.certs.cert, self.certs.key)

    def _pick_ssl_context(
        self, ssl_object: ssl.SSLObject, _name: str | None, _context: ssl.SSLContext
    ) -> None:
        if self._server_ssl_now is not None:
            ssl_object.context = self._server_ssl_now

    async def _reconnect_store(self) -> None:
        tls = self.etcd.config.client_tls  # the member's TLS phase now (store_upgrade.py)
        await self.store.reconnect(tls.ca.read_bytes(), tls.cert.read_bytes(), tls.key.read_bytes())

    async def stop(self, *, stop_etcd: bool = True) -> None:
        await self.store_renewal.stop()
        await self.upgrade.stop()
        self.hub.close()
        if self._api is not None:
            await self._api.stop()
        await self.leader.stop()
        await self.quorum.stop()
        await self.feed.stop()
        with contextlib.suppress(FerryError):
            await self.store.close()
        if stop_etcd:
            await self.etcd.stop()
