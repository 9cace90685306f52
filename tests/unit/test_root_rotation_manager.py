"""A root CA rotation on a manager: start, the leader's steps, the signing CA, the tokens; and
a manager's store certificate renewal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ferry.errors import Conflict, InvalidArgument
from ferry.manager import ca
from ferry.manager.root_ca import issuer_of, node_tls
from ferry.manager.root_rotation import RootRotations
from ferry.manager.store_cert_renewal import StoreCertRenewal
from ferry.model.cluster import ClusterInfo
from ferry.model.node import Role
from ferry.model.root_rotation import Step, bundle
from tests.unit.conftest import ManagerRig


def _rotations(rig: ManagerRig) -> RootRotations:
    return RootRotations(rig.store, rig.view, rig.feed, rig.vault, rig.nodes)


def _cluster(rig: ManagerRig) -> ClusterInfo:
    cluster = rig.view.cluster()
    assert cluster is not None
    return cluster


async def _version(rig: ManagerRig) -> int:
    return (await rig.nodes.secrets())[1]


async def _beat(rig: ManagerRig, node_id: str, trust: bytes, cert: bytes) -> dict[str, str]:
    reply = await rig.hub.heartbeat(node_id, tls=node_tls(trust, cert))
    await rig.feed.wait_for(rig.store.revision)  # the leader's loop reads the mirror
    return {"trust": reply.trust_pem, "issuer": reply.issuer_key, "subject": reply.issuer_subject}


def _issuer(root_pem: bytes) -> dict[str, str]:
    issuer = issuer_of(root_pem)
    return {"issuer": issuer.key, "subject": issuer.subject}


def _cert_of(root: ca.KeyPair, node_id: str) -> bytes:
    identity = ca.Identity(node_id, "worker", "cluster0")
    return ca.sign_node(root, ca.make_csr(ca.new_key_pem()), identity, ["10.0.0.1"])


async def test_a_rotation_runs_its_two_steps_and_ends_with_new_tokens(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1", Role.MANAGER)
    await rig.add_node("n2", "h2")
    rotations = _rotations(rig)
    tokens_before = await rig.nodes.tokens()
    old_root = rig.ca.cert_pem
    await rotations.start(1, swarm_version=await _version(rig))
    rotation = _cluster(rig).root_rotation
    assert rotation is not None and not rotation.signing
    assert _cluster(rig).ca_force_rotate == 1
    new_root = rotation.ca_cert_pem.encode()
    with pytest.raises(Conflict, match="already in progress"):
        await rotations.start(2, swarm_version=await _version(rig))

    # step 1: the reply asks every node to trust both; the leader waits for all of them
    both = bundle(old_root.decode(), new_root.decode()).encode()
    asked = await _beat(rig, "n1", old_root, _cert_of(rig.ca, "n1"))
    assert asked == {"trust": both.decode(), **_issuer(old_root)}
    await _beat(rig, "n2", old_root, _cert_of(rig.ca, "n2"))
    assert await rotations.step() == Step.WAIT
    for node in ("n1", "n2"):
        await _beat(rig, node, both, _cert_of(rig.ca, node))
    assert await rotations.step() == Step.SIGN

    # step 2: certificates come from the new root; the reply asks for them
    secrets, _ = await rig.nodes.secrets()
    assert rig.vault.signing_pair(_cluster(rig), secrets).cert_pem == new_root
    identity = ca.Identity("n2", "worker", "cluster0")
    renewed = await rig.joins.renew_certificate(identity, ca.make_csr(ca.new_key_pem()).decode())
    ca.verify_signed_by(renewed.encode(), new_root)
    asked = await _beat(rig, "n1", both, _cert_of(rig.ca, "n1"))
    assert {k: asked[k] for k in ("issuer", "subject")} == _issuer(new_root)
    assert await rotations.step() == Step.WAIT  # no node holds a new certificate yet
    await _beat(rig, "n2", both, renewed.encode())
    assert await rotations.step() == Step.WAIT
    new_pair = rig.vault.signing_pair(_cluster(rig), secrets)
    await _beat(rig, "n1", both, _cert_of(new_pair, "n1"))
    assert await rotations.step() == Step.FINISH

    # the new root is the swarm's: its key signs, the old one is gone, the tokens are new
    cluster = _cluster(rig)
    assert cluster.ca_cert_pem.encode() == new_root and cluster.root_rotation is None
    secrets, _ = await rig.nodes.secrets()
    assert not secrets.rotation_ca_key_sealed
    assert rig.vault.ca_pair(cluster, secrets).key_pem == new_pair.key_pem
    tokens = await rig.nodes.tokens()
    for role in ("worker", "manager"):
        assert str(tokens[role]) != str(tokens_before[role])
        assert tokens[role].matches_ca(ca.ca_der(new_root))
    asked = await _beat(rig, "n1", both, _cert_of(new_pair, "n1"))
    assert asked == {"trust": bundle(new_root.decode()), **_issuer(new_root)}


async def test_the_new_root_key_survives_a_kek_rotation(rig: ManagerRig) -> None:
    await _rotations(rig).start(1, swarm_version=await _version(rig))
    before = rig.vault.rotation_key((await rig.nodes.secrets())[0])
    await rig.keys.rotate()
    after = rig.vault.rotation_key((await rig.nodes.secrets())[0])
    assert before is not None and after == before


async def test_a_given_root_is_checked(rig: ManagerRig) -> None:
    rotations = _rotations(rig)
    version = await _version(rig)
    with pytest.raises(InvalidArgument, match="the swarm's root CA already"):
        await rotations.start(0, rig.ca, swarm_version=version)
    other = ca.create_ca("x")
    # the current root's key under a new name: no rotation at all (its holders keep power)
    same_key = _self_signed(rig.ca.key_pem, "renamed-root")
    with pytest.raises(InvalidArgument, match="needs a new key"):
        await rotations.start(0, ca.KeyPair(same_key, rig.ca.key_pem), swarm_version=version)
    with pytest.raises(InvalidArgument, match="does not match"):
        await rotations.start(0, ca.KeyPair(other.cert_pem, rig.ca.key_pem), swarm_version=version)
    with pytest.raises(Conflict, match="out of sequence"):
        await rotations.start(0, other, swarm_version=version + 1)
    await rotations.start(0, other, swarm_version=version)
    rotation = _cluster(rig).root_rotation
    assert rotation is not None and rotation.ca_cert_pem.encode() == other.cert_pem


async def test_a_manager_renews_its_store_certificate_itself(
    rig: ManagerRig, tmp_path: Path
) -> None:
    certs = ca.CertPaths(tmp_path / "certs")
    certs.directory.mkdir()
    certs.write_node(rig.ca.cert_pem, _cert_of(rig.ca, "n1"), ca.new_key_pem())
    key = ca.new_key_pem()
    old = ca.sign_store_member(rig.store_ca, ca.make_csr(key), "n1", "cluster0", ["10.0.0.7"])
    certs.write_store(rig.store_ca.cert_pem, old, key)
    reconnected: list[bytes] = []

    async def reconnect() -> None:
        reconnected.append(certs.store_cert.read_bytes())

    now = dt.datetime.now(dt.UTC)
    renewal = StoreCertRenewal(certs, rig.vault, rig.view, reconnect, draw=0.0, clock=lambda: now)
    assert not await renewal.step()  # not due: a fresh certificate
    later = now + dt.timedelta(days=200)
    renewal = StoreCertRenewal(certs, rig.vault, rig.view, reconnect, draw=0.0, clock=lambda: later)
    assert await renewal.step()
    new = x509.load_pem_x509_certificate(certs.store_cert.read_bytes())
    assert reconnected == [certs.store_cert.read_bytes()]
    assert ca.store_identity_of(new) == ca.Identity("n1", "manager", "cluster0")
    assert ca.ip_sans(new) == ["10.0.0.7"]
    ca.verify_signed_by(certs.store_cert.read_bytes(), rig.store_ca.cert_pem)
    assert certs.store_key.read_bytes() != key


def _self_signed(key_pem: bytes, name: str) -> bytes:
    key = ca.load_key(key_pem)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_a_given_root_ending_too_soon_or_with_a_retired_key_is_refused(
    rig: ManagerRig,
) -> None:
    rotations = _rotations(rig)
    short_key = ca.new_key_pem()
    short = _self_signed(short_key, "short-lived")  # 30 days; the swarm's expiry is 365 days
    with pytest.raises(InvalidArgument, match="before node certificates"):
        await rotations.start(0, ca.KeyPair(short, short_key), swarm_version=await _version(rig))
    # with node certificates shorter than the root (swarm ca --rotate --cert-expiry 24h)
    await rotations.start(
        0, ca.KeyPair(short, short_key), swarm_version=await _version(rig),
        node_cert_expiry_s=24 * 3600,
    )  # fmt: skip
    rotation = _cluster(rig).root_rotation
    assert rotation is not None and rotation.ca_cert_pem.encode() == short


async def test_a_finished_rotation_retires_the_old_key_for_good(rig: ManagerRig) -> None:
    await rig.add_node("n1", "h1", Role.MANAGER)
    rotations = _rotations(rig)
    await rotations.start(1, swarm_version=await _version(rig))
    rotation = _cluster(rig).root_rotation
    assert rotation is not None
    new_root = rotation.ca_cert_pem.encode()
    both = bundle(rig.ca.cert_pem.decode(), new_root.decode()).encode()
    await _beat(rig, "n1", both, _cert_of(rig.ca, "n1"))
    assert await rotations.step() == Step.SIGN
    secrets, _ = await rig.nodes.secrets()
    await _beat(rig, "n1", both, _cert_of(rig.vault.signing_pair(_cluster(rig), secrets), "n1"))
    assert await rotations.step() == Step.FINISH
    assert _cluster(rig).retired_root_keys == (issuer_of(rig.ca.cert_pem).key,)
    back = _self_signed(rig.ca.key_pem, "the old key, renamed")
    with pytest.raises(InvalidArgument, match="rotated away from"):
        await rotations.start(
            2, ca.KeyPair(back, rig.ca.key_pem), swarm_version=await _version(rig)
        )
