"""The certificates of a root CA rotation (``docker swarm ca --rotate``), and what a node
reports of its own TLS state (Docker's node ``Description.TLSInfo``).

A rotation moves every node from the old root to a new one in two steps (``model/
root_rotation.py``): every node first trusts both roots, then gets a certificate of the new
root, then trusts the new root alone. The new root is **cross-signed** by the old one: a
certificate with the new root's subject and public key, issued by the old root. A node that
joins meanwhile pins the old root by its join token's digest; the cross-signature is how it
learns that the new root is the swarm's too, over a connection it cannot trust yet.
"""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from ferry.errors import Forbidden, InvalidArgument
from ferry.manager.ca import KeyPair, issuing_root, load_key
from ferry.model.root_rotation import Issuer, NodeTLS


def cross_sign(old: KeyPair, new_root_pem: bytes) -> bytes:
    """The new root's subject and key, certified by the ``old`` root's key (PEM)."""
    new = x509.load_pem_x509_certificate(new_root_pem)
    old_cert = x509.load_pem_x509_certificate(old.cert_pem)
    builder = (
        x509.CertificateBuilder()
        .subject_name(new.subject)
        .issuer_name(old_cert.subject)
        .public_key(new.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(new.not_valid_before_utc)
        .not_valid_after(min(new.not_valid_after_utc, old_cert.not_valid_after_utc))
    )
    for extension in new.extensions:
        # the authority is the old root here: a given root's own key identifier would lie
        if not isinstance(extension.value, x509.AuthorityKeyIdentifier):
            builder = builder.add_extension(extension.value, extension.critical)
    cert = builder.sign(load_key(old.key_pem), hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def vouched(old_root_pem: bytes, cross_signed_pem: bytes, new_root_pem: bytes) -> bool:
    """True when ``cross_signed_pem`` is the old root's signature over the new root's subject
    and public key: then whoever trusts the old root may trust the new one."""
    try:
        old = x509.load_pem_x509_certificate(old_root_pem)
        cross = x509.load_pem_x509_certificate(cross_signed_pem)
        new = x509.load_pem_x509_certificate(new_root_pem)
        cross.verify_directly_issued_by(old)
        new.verify_directly_issued_by(new)  # self-signed: the key in it is really the root's
    except (ValueError, TypeError, InvalidSignature):
        return False
    return cross.subject == new.subject and _spki(cross) == _spki(new)


def valid_until(cert_pem: bytes) -> dt.datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def same_subject(cert_a_pem: bytes, cert_b_pem: bytes) -> bool:
    a = x509.load_pem_x509_certificate(cert_a_pem)
    return a.subject == x509.load_pem_x509_certificate(cert_b_pem).subject


def check_given_root(cert_pem: bytes, key_pem: bytes, now: dt.datetime) -> bytes:
    """A root CA a user gives (``swarm ca --rotate --ca-cert … --ca-key …``): one self-signed
    CA certificate, valid now, whose public key is the key's. Returns it as Ferry keeps it
    (PEM of that one certificate). InvalidArgument naming what is wrong otherwise (swarmkit
    refuses the same)."""
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        # cryptography's own text names Rust parser internals: one line of ours instead
        raise InvalidArgument("invalid CA certificate: no PEM certificate could be read") from exc
    if len(certs) != 1:
        raise InvalidArgument(
            f"invalid CA certificate: the file holds {len(certs)} certificates; give the root alone"
        )
    cert = certs[0]
    key = load_key(key_pem)
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = x509.BasicConstraints(ca=False, path_length=None)
    if not constraints.ca:
        raise InvalidArgument("invalid CA certificate: it is not a CA (BasicConstraints)")
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        raise InvalidArgument("invalid CA certificate: it is not valid now (expired or not yet)")
    try:
        if cert.subject != cert.issuer:
            raise InvalidSignature
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise InvalidArgument("invalid CA certificate: it is not a root (not self-signed)") from exc
    mine = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if mine != _spki(cert):
        raise InvalidArgument("the CA key does not match the CA certificate")
    return cert.public_bytes(serialization.Encoding.PEM)


def node_tls(trust_pem: bytes, cert_pem: bytes) -> NodeTLS:
    """This node's TLS state from its trust bundle and certificate (files on its disk); the
    issuer is empty if no trusted root signed the certificate."""
    root = issuing_root(cert_pem, trust_pem)
    if root is None:
        return NodeTLS(trust_root=trust_pem.decode())
    return NodeTLS(trust_pem.decode(), _b64(root.subject.public_bytes()), _b64(_spki(root)))


def issuer_key(root_pem: bytes) -> str:
    """A root's public key as ``NodeTLS.issuer_key`` reports it."""
    return _b64(_spki(x509.load_pem_x509_certificate(root_pem)))


def issuer_of(root_pem: bytes) -> Issuer:
    """A root as the issuer of the certificates it signs: its subject and public key, as
    ``NodeTLS`` reports them (Docker's CertIssuerSubject, CertIssuerPublicKey)."""
    return _issuer(x509.load_pem_x509_certificate(root_pem))


def issuers(bundle_pem: bytes) -> set[Issuer]:
    """Every root of a PEM bundle as ``issuer_of`` names it."""
    return {_issuer(root) for root in x509.load_pem_x509_certificates(bundle_pem)}


def _issuer(root: x509.Certificate) -> Issuer:
    return Issuer(_b64(root.subject.public_bytes()), _b64(_spki(root)))


def roots(bundle_pem: bytes) -> set[bytes]:
    """The roots of a PEM bundle, DER each: what two bundles are compared by."""
    try:
        certs = x509.load_pem_x509_certificates(bundle_pem)
    except ValueError as exc:
        raise Forbidden(f"invalid trust bundle: {exc}") from exc
    return {c.public_bytes(serialization.Encoding.DER) for c in certs}


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
