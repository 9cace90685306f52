"""Node certificates renewed before they lapse: when (model/cert_renewal.py), how a node does it
(daemon/cert_renewal.py) and what a manager signs (JoinService.renew_certificate)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ferry.daemon.cert_renewal import CertRenewal
from ferry.errors import FerryError, Forbidden
from ferry.manager import ca
from ferry.manager.ca import CertPaths
from ferry.model.cert_renewal import renew_at
from tests.unit.conftest import ManagerRig

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.mark.parametrize(("draw", "seconds"), [(0.0, 1800), (0.5, 2340), (0.999, 2878.92)])
def test_a_certificate_is_renewed_between_half_and_four_fifths_of_its_life(
    draw: float, seconds: float
) -> None:
    at = renew_at(T0, T0 + HOUR, draw)
    assert (at - T0).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("draw", [-0.1, 1.0, 2.0])
def test_a_draw_out_of_range_is_refused(draw: float) -> None:
    with pytest.raises(ValueError, match="not in"):
        renew_at(T0, T0 + HOUR, draw)


CLUSTER_CA = ca.create_ca("c1")


def node_certs(tmp: Path, role: str = "worker") -> CertPaths:
    certs = CertPaths(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    key = ca.new_key_pem()
    cert = ca.sign_node(
        CLUSTER_CA, ca.make_csr(key), ca.Identity("n1", role, "c1"), ["10.0.0.1"], validity=HOUR
    )
    certs.write_node(CLUSTER_CA.cert_pem, cert, key)
    return certs


def not_before(certs: CertPaths) -> dt.datetime:
    return x509.load_pem_x509_certificate(certs.cert.read_bytes()).not_valid_before_utc


class Signer:
    """A manager's /v1/renew, as far as the node sees it."""

    def __init__(self, role: str = "worker") -> None:
        self.role = role
        self.calls = 0

    async def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        identity = ca.Identity("n1", self.role, "c1")
        cert = ca.sign_node(
            CLUSTER_CA, body["csr_pem"].encode(), identity, ["10.0.0.1"], validity=2 * HOUR
        )
        return {"cert_pem": cert.decode()}


async def test_a_node_renews_once_due_and_reloads(tmp_path: Path) -> None:
    certs = node_certs(tmp_path)
    start = not_before(certs)
    now = [start + dt.timedelta(minutes=10)]
    reloaded: list[bool] = []

    async def reload() -> None:
        reloaded.append(True)

    signer = Signer()
    renewal = CertRenewal(certs, signer, reload, asyncio.Lock(), draw=0.0, clock=lambda: now[0])
    assert not await renewal.step()
    assert signer.calls == 0
    old_key = certs.key.read_bytes()
    now[0] = start + dt.timedelta(minutes=33)  # half of 65 min (issued 5 min back-dated)
    assert await renewal.step()
    assert (signer.calls, reloaded) == (1, [True])
    assert certs.key.read_bytes() != old_key  # a new key, not only a new certificate
    renewed = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    assert renewed.not_valid_after_utc - renewed.not_valid_before_utc > HOUR
    assert ca.identity_of(renewed) == ca.Identity("n1", "worker", "c1")
    assert not await renewal.step()  # the new one is not due yet


async def test_a_renewal_for_another_role_is_not_taken(tmp_path: Path) -> None:
    certs = node_certs(tmp_path)
    before = certs.cert.read_bytes()
    due = not_before(certs) + HOUR
    renewal = CertRenewal(certs, Signer("manager"), _nothing, asyncio.Lock(), draw=0.0,
                          clock=lambda: due)  # fmt: skip
    with pytest.raises(FerryError, match="another node or role"):
        await renewal.step()
    assert certs.cert.read_bytes() == before


async def _nothing() -> None:
    return None


async def test_a_manager_renews_for_the_same_node_and_role(rig: ManagerRig) -> None:
    node = await rig.add_node("n1", "h2")
    csr = ca.make_csr(ca.new_key_pem()).decode()
    cert_pem = await rig.joins.renew_certificate(ca.Identity("n1", "worker", "cluster0"), csr)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    assert ca.identity_of(cert) == ca.Identity("n1", "worker", "cluster0")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address(node.addr) in sans.get_values_for_type(x509.IPAddress)
    with pytest.raises(Forbidden, match="is a worker now"):  # a demoted manager's old one
        await rig.joins.renew_certificate(ca.Identity("n1", "manager", "cluster0"), csr)
    with pytest.raises(Forbidden, match="not a member"):
        await rig.joins.renew_certificate(ca.Identity("zz", "worker", "cluster0"), csr)
