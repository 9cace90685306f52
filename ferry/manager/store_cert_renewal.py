"""A manager's store (etcd) certificate, renewed before it lapses, as its node certificate is
(``daemon/cert_renewal.py``; Swarm renews a manager's certificate, which its raft uses, the
same way).

Every CHECK_S the manager reads its store certificate; once past its renewal moment (between
50 % and 80 % of its life, ``model/cert_renewal.py``) it signs a new one itself: a manager
holds the store CA's key (sealed with the KEK, ``vault.py``), so no other manager is asked.
The new certificate names the same node and addresses. etcd reads its certificate files at
each new connection, so the member serves the new one without a restart; this manager's own
store client reconnects with it. A locked manager (autolock) waits for ``swarm unlock``.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable

from cryptography import x509

from ferry.aio import Periodic
from ferry.daemon.logs import kv
from ferry.manager import ca
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.manager.vault import Vault
from ferry.model.cert_renewal import renew_at
from ferry.model.cluster import ClusterSecrets

log = logging.getLogger("ferry.manager.store_cert_renewal")

CHECK_S = 60.0

Hook = Callable[[], Awaitable[None]]


class StoreCertRenewal:
    def __init__(
        self,
        certs: ca.CertPaths,
        vault: Vault,
        view: ClusterView,
        reconnect: Hook,
        *,
        draw: float | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._certs = certs
        self._vault = vault
        self._view = view
        self._reconnect = reconnect  # this manager's store client takes the new certificate
        self._draw = random.random() if draw is None else draw
        self._clock = clock
        # a dead loop would let the certificate lapse
        self._loop = Periodic(
            self.step,
            CHECK_S,
            log,
            waiting="store certificate not renewed yet",
            crashed="store certificate renewal crashed; trying again later",
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    def due_at(self) -> dt.datetime:
        cert = x509.load_pem_x509_certificate(self._certs.store_cert.read_bytes())
        return renew_at(cert.not_valid_before_utc, cert.not_valid_after_utc, self._draw)

    async def step(self) -> bool:
        """Renew if due; True when a new certificate is in place. Raises FerryError
        (SwarmLocked while locked)."""
        if not self._certs.have_store() or self._clock() < self.due_at():
            return False
        secrets = self._view.mirror.obj(keys.SECRETS, ClusterSecrets)
        if secrets is None:
            return False
        store_ca = self._vault.store_ca_pair(secrets)
        old = x509.load_pem_x509_certificate(self._certs.store_cert.read_bytes())
        identity = ca.store_identity_of(old)
        key_pem = ca.new_key_pem()
        cert_pem = ca.sign_store_member(
            store_ca, ca.make_csr(key_pem), identity.node_id, identity.cluster_id, ca.ip_sans(old)
        )
        self._certs.write_store(store_ca.cert_pem, cert_pem, key_pem)
        await self._reconnect()
        until = x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
        log.info("store certificate renewed", extra=kv(until=until.isoformat()))
        return True
