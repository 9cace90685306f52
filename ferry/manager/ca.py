"""The swarm's two CAs: their key pairs, the certificates they sign, and who a certificate says
its holder is.

- The **cluster CA** signs every node's certificate: node id (CN), role (OU: swarm-manager or
  swarm-worker) and cluster id (O), like Docker's; server and client auth, for the cluster API
  on 2377.
- The **store CA** signs only managers' etcd certificates (OU swarm-store), for etcd's client
  and peer ports. etcd trusts it alone, so no worker certificate opens the store. Its key, like
  the cluster CA's, is held sealed in the store (``sealing.py``), so only managers use it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferry.daemon.files import write_atomic
from ferry.errors import Forbidden, InvalidArgument

CA_VALIDITY = dt.timedelta(days=7300)  # 20 years, as swarmkit's RootCAExpiration
NODE_VALIDITY = dt.timedelta(days=365)
ROLE_OU = {"manager": "swarm-manager", "worker": "swarm-worker"}
STORE_OU = "swarm-store"
CLUSTER_CA_NAME = "ferry-swarm-ca"
STORE_CA_NAME = "ferry-store-ca"


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


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def load_key(key_pem: bytes) -> SigningKey:
    """An ECDSA or RSA private key (what swarmkit accepts for a root CA); InvalidArgument for
    anything else, or for an encrypted key."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        reason = "it is encrypted" if "password" in str(exc).lower() else "it could not be read"
        raise InvalidArgument(
            f"invalid private key: {reason} (give an unencrypted PEM key)"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidArgument("expected an ECDSA or RSA private key")
    return key


def create_ca(cluster_id: str, common_name: str = CLUSTER_CA_NAME) -> KeyPair:
    key_pem = new_key_pem()
    key = load_key(key_pem)
    # Each root's name is its own (a random serial number beside the common name) and its key
    # identified (RFC 5280's subject key identifier): a node trusts two roots at once during a
    # root rotation, and TLS finds a certificate's issuer by name and key identifier.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, secrets.token_hex(8)),
        ]
    )
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
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
        .sign(load_key(key_pem), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def sign_node(
    ca: KeyPair,
    csr_pem: bytes,
    identity: Identity,
    ips: list[str],
    *,
    validity: dt.timedelta = NODE_VALIDITY,
) -> bytes:
    """A node certificate of the cluster CA for ``identity``, valid for ``ips`` during
    ``validity`` (the swarm's CAConfig.NodeCertExpiry)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, identity.node_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ROLE_OU[identity.role]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.cluster_id),
        ]
    )
    return _sign(ca, csr_pem, subject, identity.node_id, ips, validity=validity)


def sign_store_member(
    store_ca: KeyPair, csr_pem: bytes, node_id: str, cluster_id: str, ips: list[str]
) -> bytes:
    """A manager's etcd certificate (client and peer) of the store CA, valid for ``ips``."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, node_id),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, STORE_OU),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
        ]
    )
    return _sign(store_ca, csr_pem, subject, node_id, ips)


def _sign(
    ca: KeyPair,
    csr_pem: bytes,
    subject: x509.Name,
    node_id: str,
    ips: list[str],
    *,
    validity: dt.timedelta = NODE_VALIDITY,
) -> bytes:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidArgument(f"invalid certificate signing request: {exc}") from exc
    if not csr.is_signature_valid:
        raise InvalidArgument("certificate signing request has a bad signature")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    sans: list[x509.GeneralName] = [x509.DNSName(node_id), x509.DNSName("localhost")]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in sorted(set(ips))]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        # never past the CA's own end: a certificate its issuer outlives means nothing after
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(load_key(ca.key_pem), hashes.SHA256())
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


def store_identity_of(cert: x509.Certificate) -> Identity:
    """Who a store (etcd) certificate names: its node and cluster (role "manager");
    Forbidden for a certificate that is no store certificate."""

    def one(oid: x509.ObjectIdentifier) -> str:
        attrs = cert.subject.get_attributes_for_oid(oid)
        return str(attrs[0].value) if attrs else ""

    if one(NameOID.ORGANIZATIONAL_UNIT_NAME) != STORE_OU:
        raise Forbidden("certificate is no store certificate")
    return Identity(one(NameOID.COMMON_NAME), "manager", one(NameOID.ORGANIZATION_NAME))


def ip_sans(cert: x509.Certificate) -> list[str]:
    """The IP addresses a certificate is valid for (its subject alternative names)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


def issuer_der(ca_pem: bytes) -> tuple[bytes, bytes]:
    """A CA certificate's subject and public key (SubjectPublicKeyInfo), DER: what Docker's
    TLSInfo names the root by."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    public_key = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return cert.subject.public_bytes(), public_key


def identity_of_der(der: bytes) -> Identity:
    return identity_of(x509.load_der_x509_certificate(der))


def verify_signed_by(cert_pem: bytes, ca_pem: bytes) -> None:
    """Raise Forbidden unless ``cert_pem`` was issued by a CA in ``ca_pem`` (one root, or the
    two a root rotation trusts at once)."""
    if issuing_root(cert_pem, ca_pem) is None:
        raise Forbidden("certificate was not issued by this cluster's CA")


def issuing_root(cert_pem: bytes, roots_pem: bytes) -> x509.Certificate | None:
    """The root in ``roots_pem`` (a PEM bundle) that signed ``cert_pem``, None if none did."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    for root in x509.load_pem_x509_certificates(roots_pem):
        try:
            cert.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return root
    return None


def ca_der(ca_pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class CertPaths:
    """Where a node keeps the cluster CA certificate and its own certificate and key; a manager
    also its store (etcd) certificate and key, the store CA's certificate, and — unless the
    swarm is autolocked — the key-encryption key (0600)."""

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

    @property
    def store_ca(self) -> Path:
        return self.directory / "store-ca.pem"

    @property
    def store_cert(self) -> Path:
        return self.directory / "store.pem"

    @property
    def store_key(self) -> Path:
        return self.directory / "store.key"

    @property
    def store_trust(self) -> Path:
        """Both CAs, trusted by etcd's peer port while an older swarm moves to the store CA."""
        return self.directory / "store-trust.pem"

    @property
    def kek(self) -> Path:
        return self.directory / "kek"

    def exist(self) -> bool:
        return self.ca.exists() and self.cert.exists() and self.key.exists()

    def write_node(self, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        write_atomic(self.ca, ca_pem, 0o644)
        write_atomic(self.cert, cert_pem, 0o644)
        write_atomic(self.key, key_pem, 0o600)

    def write_store(self, store_ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        """A manager's etcd credentials, and the two-CA bundle etcd's peer port trusts while an
        older swarm moves to the store CA (written beside them, harmless once it is done)."""
        write_atomic(self.store_ca, store_ca_pem, 0o644)
        write_atomic(self.store_cert, cert_pem, 0o644)
        write_atomic(self.store_key, key_pem, 0o600)
        write_atomic(self.store_trust, store_ca_pem + self.ca.read_bytes(), 0o644)

    def remove_store(self) -> None:
        """Forget what only a manager holds (a demoted node): its etcd credentials and the KEK."""
        for path in (self.store_ca, self.store_cert, self.store_key, self.store_trust, self.kek):
            path.unlink(missing_ok=True)

    def have_store(self) -> bool:
        """A manager of a swarm formed before the store CA has none (see daemon/upgrade.py)."""
        return self.store_ca.exists() and self.store_cert.exists() and self.store_key.exists()
