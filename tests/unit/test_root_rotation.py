"""Root CA rotation: its steps as data, its certificates, and a node following the asks."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ferry.api.models.swarm import SwarmSpec
from ferry.daemon.trust import TrustFollower
from ferry.errors import FerryError, Forbidden, InvalidArgument
from ferry.manager import ca
from ferry.manager.root_ca import (
    check_given_root,
    cross_sign,
    issuer_key,
    issuer_of,
    node_tls,
    roots,
    same_subject,
    vouched,
)
from ferry.model.root_rotation import (
    Issuer,
    NodeTLS,
    RootRotation,
    Step,
    bundle,
    next_step,
    progress,
    wanted_trust,
)


def _now() -> dt.datetime:
    """Read when a test runs, not at import: the collection of a whole suite comes minutes
    before, and a CA made since is not valid yet at that earlier moment."""
    return dt.datetime.now(dt.UTC)


def _leaf(root: ca.KeyPair, role: str = "worker") -> tuple[bytes, bytes]:
    key = ca.new_key_pem()
    cert = ca.sign_node(root, ca.make_csr(key), ca.Identity("n1", role, "c1"), ["10.0.0.1"])
    return cert, key


@pytest.fixture(scope="module")
def old() -> ca.KeyPair:
    return ca.create_ca("c1")


@pytest.fixture(scope="module")
def new() -> ca.KeyPair:
    return ca.create_ca("c1")


# the steps ---------------------------------------------------------------------------------
def test_bundle_keeps_each_root_once_in_order() -> None:
    a, b = "A\n", "  B  "
    assert bundle(a, b, a) == "A\nB\n"
    assert bundle("", a) == "A\n"
    assert wanted_trust(a, None) == "A\n"
    assert wanted_trust(a, RootRotation("B", "X")) == "A\nB\n"


NEW_ISSUER = Issuer("s-new", "k-new")


def test_trust_step_waits_for_every_node_then_signs() -> None:
    rotation = RootRotation("NEW", "CROSS")
    both, old_only = NodeTLS("OLD\nNEW\n", "s", "k-old"), NodeTLS("OLD\n", "s", "k-old")
    assert next_step(rotation, NEW_ISSUER, [both, old_only]) == Step.WAIT
    assert next_step(rotation, NEW_ISSUER, [both, both]) == Step.SIGN
    assert next_step(rotation, NEW_ISSUER, [both, NodeTLS()]) == Step.WAIT  # not reported yet


def test_signing_step_waits_for_every_certificate_then_finishes() -> None:
    rotation = RootRotation("NEW", "CROSS", signing=True)
    renewed = NodeTLS("OLD\nNEW\n", "s-new", "k-new")
    not_yet = NodeTLS("OLD\nNEW\n", "s-old", "k-old")
    assert next_step(rotation, NEW_ISSUER, [renewed, not_yet]) == Step.WAIT
    # the same key under another name is another issuer to TLS: not renewed
    same_key = NodeTLS("OLD\nNEW\n", "s-old", "k-new")
    assert next_step(rotation, NEW_ISSUER, [renewed, same_key]) == Step.WAIT
    assert next_step(rotation, NEW_ISSUER, [renewed, renewed]) == Step.FINISH


def test_progress_counts_as_docker_swarm_ca_does() -> None:
    reports = [NodeTLS("NEW\n", "s", "k"), NodeTLS("OLD\nNEW\n", "s", "k"), NodeTLS("OLD\n")]
    counted = progress("NEW", Issuer("s", "k"), reports)
    assert (counted.certificates, counted.trust, counted.total) == (2, 1, 3)


# the certificates ------------------------------------------------------------------------
def test_each_root_has_a_name_of_its_own(old: ca.KeyPair, new: ca.KeyPair) -> None:
    assert not same_subject(old.cert_pem, new.cert_pem)


def test_cross_signature_vouches_for_the_new_root_only(old: ca.KeyPair, new: ca.KeyPair) -> None:
    cross = cross_sign(old, new.cert_pem)
    assert vouched(old.cert_pem, cross, new.cert_pem)
    stranger = ca.create_ca("c1")
    assert not vouched(old.cert_pem, cross, stranger.cert_pem)  # another key than certified
    assert not vouched(old.cert_pem, cross_sign(stranger, new.cert_pem), new.cert_pem)
    assert not vouched(old.cert_pem, b"garbage", new.cert_pem)


def test_a_bundle_verifies_certificates_of_either_root(old: ca.KeyPair, new: ca.KeyPair) -> None:
    trust = bundle(old.cert_pem.decode(), new.cert_pem.decode()).encode()
    for root in (old, new):
        cert, _ = _leaf(root)
        ca.verify_signed_by(cert, trust)
        assert node_tls(trust, cert).issuer_key == issuer_key(root.cert_pem)
    with pytest.raises(Forbidden):
        ca.verify_signed_by(_leaf(ca.create_ca("c1"))[0], trust)


def test_node_tls_reports_no_issuer_for_an_untrusted_certificate(old: ca.KeyPair) -> None:
    cert, _ = _leaf(ca.create_ca("c1"))
    report = node_tls(old.cert_pem, cert)
    assert report.trust_root == old.cert_pem.decode()
    assert report.issuer_key == ""


def test_a_given_root_must_be_a_valid_root_with_its_key(old: ca.KeyPair, new: ca.KeyPair) -> None:
    assert check_given_root(new.cert_pem, new.key_pem, _now()) == new.cert_pem
    with pytest.raises(InvalidArgument, match="holds 2 certificates"):
        check_given_root(new.cert_pem + old.cert_pem, new.key_pem, _now())
    with pytest.raises(InvalidArgument, match="does not match"):
        check_given_root(new.cert_pem, old.key_pem, _now())
    leaf, leaf_key = _leaf(new)
    with pytest.raises(InvalidArgument, match="not a CA"):
        check_given_root(leaf, leaf_key, _now())
    with pytest.raises(InvalidArgument, match="not valid now"):
        check_given_root(new.cert_pem, new.key_pem, _now() + dt.timedelta(days=30 * 365))
    with pytest.raises(InvalidArgument, match="invalid CA certificate"):
        check_given_root(b"not a certificate", new.key_pem, _now())
    with pytest.raises(InvalidArgument, match="private key"):
        check_given_root(new.cert_pem, b"not a key", _now())


def test_roots_of_a_bundle(old: ca.KeyPair, new: ca.KeyPair) -> None:
    both = roots(old.cert_pem + new.cert_pem)
    assert len(both) == 2 and roots(old.cert_pem) < both
    with pytest.raises(Forbidden):
        roots(b"nothing")


# the API's reading of a swarm update ---------------------------------------------------------
def test_a_rotation_is_asked_by_force_rotate_or_a_signing_ca() -> None:
    def asked(**ca_config: object) -> tuple[int, bytes, bytes] | None:
        return SwarmSpec.model_validate({"CAConfig": ca_config}).root_rotation(2)

    assert asked() is None
    assert asked(ForceRotate=2) is None  # sent back unchanged: nothing asked
    assert asked(ForceRotate=0) is None  # left out by a client's own spec: nothing either
    assert asked(ForceRotate=3) == (3, b"", b"")
    assert asked(ForceRotate=2, SigningCACert="C", SigningCAKey="K") == (2, b"C", b"K")
    with pytest.raises(InvalidArgument, match="needs its key"):
        asked(SigningCACert="C")
    with pytest.raises(InvalidArgument, match="needs its certificate"):
        asked(SigningCAKey="K")
    with pytest.raises(InvalidArgument, match="ForceRotate"):
        asked(ForceRotate=-1)
    spec = SwarmSpec.model_validate({"CAConfig": {"ExternalCAs": [{"URL": "x"}]}})
    assert any("--external-ca" in item for item in spec.unsupported())


# a node following the asks -------------------------------------------------------------------
class _Node:
    def __init__(self, directory: Path, root: ca.KeyPair) -> None:
        self.certs = ca.CertPaths(directory)
        cert, key = _leaf(root)
        self.certs.write_node(root.cert_pem, cert, key)
        self.reloads = 0
        self.renewed_by: ca.KeyPair | None = None
        self.signer = root

    async def renew(self) -> bool:
        cert, key = _leaf(self.signer)
        self.certs.write_node(self.certs.ca.read_bytes(), cert, key)
        self.renewed_by = self.signer
        return True

    async def reload(self) -> None:
        self.reloads += 1

    def follower(self) -> TrustFollower:
        return TrustFollower(self.certs, self.renew, self.reload, asyncio.Lock())


def test_a_node_trusts_both_then_renews_then_trusts_the_new_root_alone(
    tmp_path: Path, old: ca.KeyPair, new: ca.KeyPair
) -> None:
    node = _Node(tmp_path, old)
    follower = node.follower()
    both = bundle(old.cert_pem.decode(), new.cert_pem.decode())

    asyncio.run(follower.follow(both, issuer_of(old.cert_pem)))  # step 1
    assert node.certs.ca.read_text() == both and node.reloads == 1
    assert node.renewed_by is None

    node.signer = new
    asyncio.run(follower.follow(both, issuer_of(new.cert_pem)))  # step 2
    assert node.renewed_by is new
    assert follower.report().issuer_key == issuer_key(new.cert_pem)

    asyncio.run(follower.follow(bundle(new.cert_pem.decode()), issuer_of(new.cert_pem)))
    assert node.certs.ca.read_bytes().strip() == new.cert_pem.strip()
    assert node.reloads == 2


def test_a_node_refuses_unrelated_roots_and_untrusted_issuers(
    tmp_path: Path, old: ca.KeyPair, new: ca.KeyPair
) -> None:
    node = _Node(tmp_path, old)
    follower = node.follower()
    with pytest.raises(FerryError, match="unrelated"):
        asyncio.run(follower.follow(new.cert_pem.decode(), issuer_of(new.cert_pem)))
    assert node.certs.ca.read_bytes() == old.cert_pem and node.reloads == 0
    # an issuer this node does not trust yet: no renewal (its certificate would not verify)
    asyncio.run(follower.follow(old.cert_pem.decode(), issuer_of(new.cert_pem)))
    assert node.renewed_by is None


def test_a_given_certificate_without_basic_constraints_is_no_ca(tmp_path: Path) -> None:
    key_pem = ca.new_key_pem()
    key = ca.load_key(key_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no-constraints")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(InvalidArgument, match="not a CA"):
        check_given_root(cert.public_bytes(serialization.Encoding.PEM), key_pem, _now())


def test_a_cross_signature_does_not_copy_the_new_roots_own_authority_key_id(
    old: ca.KeyPair,
) -> None:
    key_pem = ca.new_key_pem()
    key = ca.load_key(key_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "given-root")])
    given = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(3)
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    cross = x509.load_pem_x509_certificate(cross_sign(old, given))
    kinds = {type(e.value) for e in cross.extensions}
    assert x509.AuthorityKeyIdentifier not in kinds and x509.BasicConstraints in kinds
    assert vouched(old.cert_pem, cross.public_bytes(serialization.Encoding.PEM), given)
