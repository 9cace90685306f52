"""The cluster CA: its key pair, node certificates, and who a certificate says its holder is.

Node certificates carry the node id (CN), the role (OU: swarm-manager or swarm-worker) and the
cluster id (O), like Docker's. They serve both ways (server and client auth) because the same
certificate identifies a manager on 2377 and an etcd member to its peers.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferry.errors import Forbidden, InvalidArgument

CA_VALIDITY = dt.timedelta(days=3650)
NODE_VALIDITY = dt.timedelta(days=365)
ROLE_OU = {"manager": "swarm-manager", "worker": "swarm-worker"}


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class Identity:
    node_id: str
    role: str
    cluster_id: str


def new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument("expected an EC private key")
    return key


def create_ca(cluster_id: str) -> KeyPair:
    key_pem = new_key_pem()
    key = _load_key(key_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry-swarm-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def make_csr(key_pem: bytes) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry-node")]))
        .sign(_load_key(key_pem), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def sign_node(ca: KeyPair, csr_pem: bytes, identity: Identity, ips: list[str]) -> bytes:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidArgument(f"invalid certificate signing request: {exc}") from exc
    if not csr.is_signature_valid:
        raise InvalidArgument("certificate signing request has a bad signature")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, identity.node_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ROLE_OU[identity.role]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.cluster_id),
        ]
    )
    sans: list[x509.GeneralName] = [x509.DNSName(identity.node_id), x509.DNSName("localhost")]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in sorted(set(ips))]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + NODE_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(_load_key(ca.key_pem), hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def identity_of(cert: x509.Certificate) -> Identity:
    def one(oid: x509.ObjectIdentifier) -> str:
        attrs = cert.subject.get_attributes_for_oid(oid)
        return str(attrs[0].value) if attrs else ""

    ou = one(NameOID.ORGANIZATIONAL_UNIT_NAME)
    roles = {v: k for k, v in ROLE_OU.items()}
    if ou not in roles:
        raise Forbidden("certificate carries no Ferry node role")
    return Identity(one(NameOID.COMMON_NAME), roles[ou], one(NameOID.ORGANIZATION_NAME))


def identity_of_der(der: bytes) -> Identity:
    return identity_of(x509.load_der_x509_certificate(der))


def verify_signed_by(cert_pem: bytes, ca_pem: bytes) -> None:
    """Raise Forbidden unless ``cert_pem`` was issued by the CA in ``ca_pem``."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise Forbidden("certificate was not issued by this cluster's CA") from exc


def ca_der(ca_pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class CertPaths:
    """Where a node keeps the cluster CA certificate and its own certificate and key."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.directory / "node.pem"

    @property
    def key(self) -> Path:
        return self.directory / "node.key"

    def exist(self) -> bool:
        return self.ca.exists() and self.cert.exists() and self.key.exists()
