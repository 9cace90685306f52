"""This node's side of a root CA rotation: it reports what it trusts and who issued its
certificate, and follows what the managers' heartbeat replies ask (``model/root_rotation.py``).

- **Trust**: the reply names the roots to trust (a PEM bundle). A different bundle replaces
  ``ca.pem`` and the TLS contexts reload (the agent's link, a manager's cluster API). A
  bundle that shares no root with the current one is refused: a rotation only ever adds a
  root to the trusted one, or drops the old root once the new one is trusted.
- **Certificate**: the reply names the issuer (subject and public key, as Docker's TLSInfo)
  its certificate is to have. A node whose certificate has another issuer renews it at once
  (``cert_renewal.py``), but only towards a root it trusts already, so the new certificate
  verifies here too.

Both run under the controller's lock, as role changes and renewals do: one writer of the
certificate files at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ferry.daemon.files import write_atomic
from ferry.daemon.logs import kv
from ferry.errors import FerryError
from ferry.manager.ca import CertPaths
from ferry.manager.root_ca import issuers, node_tls, roots
from ferry.model.root_rotation import Issuer, NodeTLS, bundle

log = logging.getLogger("ferry.trust")

Hook = Callable[[], Awaitable[None]]
Renew = Callable[[], Awaitable[bool]]


class TrustFollower:
    def __init__(self, certs: CertPaths, renew: Renew, reload: Hook, lock: asyncio.Lock) -> None:
        self._certs = certs
        self._renew = renew  # renews now, reloads what uses the certificate
        self._reload = reload  # reloads what uses the certificate and the trusted roots
        self._lock = lock
        self._task: asyncio.Task[None] | None = None

    def report(self) -> NodeTLS:
        """This node's TLS state, from its files (empty before it has any)."""
        try:
            return node_tls(self._certs.ca.read_bytes(), self._certs.cert.read_bytes())
        except (OSError, ValueError):
            return NodeTLS()

    def wanted(self, trust_pem: str, wanted_issuer: Issuer) -> None:
        """A heartbeat reply's ask; acted on in the background when it differs from what this
        node holds (one change at a time; the next reply asks again if one failed)."""
        if not trust_pem or not wanted_issuer.key:
            return  # a manager of an older version: nothing is asked
        held = self.report()
        if bundle(held.trust_root) == bundle(trust_pem) and wanted_issuer.issued(held):
            return
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._follow(trust_pem, wanted_issuer))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _follow(self, trust_pem: str, wanted_issuer: Issuer) -> None:
        try:
            async with self._lock:
                await self.follow(trust_pem, wanted_issuer)
        except FerryError as exc:
            log.warning("could not follow the swarm's root CA yet", extra=kv(error=exc))
        except Exception:  # the next heartbeat's reply asks again
            log.exception("following the swarm's root CA crashed")

    async def follow(self, trust_pem: str, wanted_issuer: Issuer) -> None:
        """Trust ``trust_pem`` and hold a certificate of ``wanted_issuer``, a root (see the
        module notes). Raises FerryError for a bundle that shares no root with the current
        one (Forbidden for one that is no PEM bundle), or what the renewal raises."""
        held = self.report()
        if bundle(held.trust_root) != bundle(trust_pem):
            current, offered = roots(self._certs.ca.read_bytes()), roots(trust_pem.encode())
            if not current & offered:
                raise FerryError("the managers asked to trust roots unrelated to this swarm's")
            write_atomic(self._certs.ca, bundle(trust_pem).encode(), 0o644)
            await self._reload()
            log.info("trusted roots changed", extra=kv(roots=len(offered)))
        held = self.report()
        if not wanted_issuer.issued(held) and wanted_issuer in issuers(trust_pem.encode()):
            await self._renew()
            log.info("certificate renewed for the swarm's new root")
