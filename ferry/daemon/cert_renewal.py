"""This node's certificate, renewed before it lapses (Swarm renews automatically).

Every CHECK_S the node reads its certificate; once past its renewal moment
(``model/cert_renewal.py``), it sends a new key's request to a manager over its current
certificate (``POST /v1/renew``) and gets one for the same node and role, valid for the
swarm's ``--cert-expiry`` from now. The new certificate and key replace the old ones on disk,
then the hooks reload them (the agent's link, a manager's cluster API). A failed attempt is
tried again at the next check; the old certificate serves until it lapses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography import x509

from ferry.aio import Periodic
from ferry.daemon.logs import kv
from ferry.errors import FerryError
from ferry.manager import ca
from ferry.manager.ca import CertPaths
from ferry.model.cert_renewal import renew_at

log = logging.getLogger("ferry.cert_renewal")

CHECK_S = 60.0

Call = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Hook = Callable[[], Awaitable[None]]


class CertRenewal:
    def __init__(
        self,
        certs: CertPaths,
        call: Call,
        on_renewed: Hook,
        lock: asyncio.Lock,
        *,
        draw: float | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._certs = certs
        self._call = call
        self._on_renewed = on_renewed
        self._lock = lock  # the controller's: no role change writes certificates meanwhile
        self._draw = random.random() if draw is None else draw
        self._clock = clock
        # a dead loop would let the certificate lapse
        self._loop = Periodic(
            self._tick,
            CHECK_S,
            log,
            waiting="node certificate not renewed yet",
            crashed="certificate renewal crashed; trying again later",
        )

    def due_at(self) -> dt.datetime:
        cert = x509.load_pem_x509_certificate(self._certs.cert.read_bytes())
        return renew_at(cert.not_valid_before_utc, cert.not_valid_after_utc, self._draw)

    async def step(self, *, force: bool = False) -> bool:
        """Renew if due, or now if ``force`` (a root CA rotation asks for it); True when a new
        certificate is in place. The caller holds the lock. Raises what the managers answer
        (FerryError)."""
        if not force and self._clock() < self.due_at():
            return False
        key_pem = ca.new_key_pem()
        reply = await self._call({"csr_pem": ca.make_csr(key_pem).decode()})
        cert_pem = str(reply["cert_pem"]).encode()
        ca.verify_signed_by(cert_pem, self._certs.ca.read_bytes())
        old = ca.identity_of(x509.load_pem_x509_certificate(self._certs.cert.read_bytes()))
        if ca.identity_of(x509.load_pem_x509_certificate(cert_pem)) != old:
            raise FerryError("the renewed certificate names another node or role")
        self._certs.write_node(self._certs.ca.read_bytes(), cert_pem, key_pem)
        await self._on_renewed()
        log.info("node certificate renewed", extra=kv(until=self._valid_until()))
        return True

    def _valid_until(self) -> str:
        cert = x509.load_pem_x509_certificate(self._certs.cert.read_bytes())
        return cert.not_valid_after_utc.isoformat()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _tick(self) -> None:
        if self._clock() >= self.due_at():
            async with self._lock:
                await self.step()
