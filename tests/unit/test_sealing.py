"""The unlock key and the sealed CA keys: Docker's key format, AES-GCM through cryptography,
a vault that follows rotations, and a store that never holds a key in clear."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ferry.errors import Forbidden, InvalidArgument, SwarmLocked
from ferry.manager import ca, sealing
from ferry.manager.store import keys
from ferry.manager.vault import Vault, hand_over
from ferry.model.cluster import ClusterSecrets
from ferry.model.codec import decode
from ferry.model.node import Role
from tests.unit.conftest import ManagerRig

DOCKER_EXAMPLE = "SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8"  # the v1.47 spec's


# the key's text ------------------------------------------------------------------------------
def test_a_key_reads_and_prints_in_docker_s_form() -> None:
    kek = sealing.new_kek()
    text = sealing.format_key(kek)
    assert text.startswith("SWMKEY-1-") and len(text) == len(DOCKER_EXAMPLE)
    assert "=" not in text  # unpadded, as swarmkit's base64.RawStdEncoding
    assert sealing.parse_key(text) == kek
    assert sealing.parse_key(f"  {text}\n") == kek  # as read from a pipe
    assert len(sealing.parse_key(DOCKER_EXAMPLE)) == sealing.KEY_BYTES
    assert sealing.format_key(sealing.parse_key(DOCKER_EXAMPLE)) == DOCKER_EXAMPLE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8",  # no prefix
        "SWMKEY-2-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8",
        "SWMKEY-1-7c37Cc8654o6p38Hnroyw",  # too short
        "SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8AAAA",  # too long
        "SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKx*u8",  # not base64
    ],
)
def test_what_is_no_key_is_an_invalid_argument(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid key string"):
        sealing.parse_key(text)


# sealing -------------------------------------------------------------------------------------
def test_a_sealed_value_opens_with_its_key_and_purpose_only() -> None:
    kek, other = sealing.new_kek(), sealing.new_kek()
    secret = b"-----BEGIN PRIVATE KEY-----\nsecret\n"
    sealed = sealing.seal(kek, secret, sealing.CLUSTER_CA_KEY)
    assert b"secret" not in base64.b64decode(sealed.split(":", 1)[1])
    assert sealed != sealing.seal(kek, secret, sealing.CLUSTER_CA_KEY)  # a fresh nonce each
    assert sealing.unseal(kek, sealed, sealing.CLUSTER_CA_KEY) == secret
    with pytest.raises(sealing.WrongUnlockKey, match="invalid key provided"):
        sealing.unseal(other, sealed, sealing.CLUSTER_CA_KEY)
    with pytest.raises(sealing.WrongUnlockKey):
        sealing.unseal(kek, sealed, sealing.STORE_CA_KEY)


# the vault -----------------------------------------------------------------------------------
async def stored_secrets(rig: ManagerRig) -> ClusterSecrets:
    kv = await rig.store.get(keys.SECRETS)
    assert kv is not None
    return decode(ClusterSecrets, kv.value)


async def test_the_store_holds_no_key_in_clear(rig: ManagerRig) -> None:
    everything = b"".join(kv.value for kv in (await rig.store.list_prefix(keys.ROOT))[0])
    for secret in (rig.ca.key_pem, rig.store_ca.key_pem):
        assert secret.split(b"\n")[1] not in everything
    assert sealing.format_key(rig.kek)[9:].encode() not in everything
    secrets = await stored_secrets(rig)
    assert secrets.sealed and not secrets.ca_key_pem


async def test_the_vault_opens_both_ca_keys_and_a_locked_one_opens_nothing(
    rig: ManagerRig, tmp_path: Path
) -> None:
    cluster = rig.view.cluster()
    assert cluster is not None
    assert rig.vault.ca_pair(cluster, rig.secrets).key_pem == rig.ca.key_pem
    assert rig.vault.store_ca_pair(rig.secrets).key_pem == rig.store_ca.key_pem
    locked = Vault(tmp_path / "elsewhere")
    locked.load()
    assert locked.locked
    with pytest.raises(SwarmLocked, match='Please use "docker swarm unlock"'):
        locked.ca_pair(cluster, rig.secrets)


async def test_unlock_takes_the_right_key_only_and_keeps_it_off_disk_under_autolock(
    rig: ManagerRig, tmp_path: Path
) -> None:
    await rig.keys.set_autolock(True)
    secrets = await stored_secrets(rig)
    assert secrets.autolock
    assert not (tmp_path / "kek").exists()
    key = sealing.format_key(rig.vault.kek())
    restarted = Vault(tmp_path / "kek")
    restarted.load()
    assert restarted.locked
    with pytest.raises(sealing.WrongUnlockKey):
        restarted.unlock(sealing.format_key(sealing.new_kek()), secrets)
    with pytest.raises(InvalidArgument):
        restarted.unlock("SWMKEY-1-nope", secrets)
    assert restarted.locked
    restarted.unlock(key, secrets)
    assert not restarted.locked
    assert not (tmp_path / "kek").exists()


async def test_autolock_on_makes_a_new_key_and_off_puts_it_back_on_disk(
    rig: ManagerRig, tmp_path: Path
) -> None:
    first = rig.vault.kek()
    assert sealing.parse_key((tmp_path / "kek").read_text()) == first
    await rig.keys.set_autolock(True)
    second = rig.vault.kek()
    assert second != first
    assert not (tmp_path / "kek").exists()
    await rig.keys.set_autolock(False)
    assert rig.vault.kek() == second
    assert sealing.parse_key((tmp_path / "kek").read_text()) == second
    assert (tmp_path / "kek").stat().st_mode & 0o777 == 0o600
    assert not (await stored_secrets(rig)).autolock


async def test_other_managers_follow_a_rotation_but_not_two(
    rig: ManagerRig, tmp_path: Path
) -> None:
    other = Vault(tmp_path / "other-kek")
    other.hold(rig.kek, persist=True)
    await rig.keys.rotate()
    rotated = await stored_secrets(rig)
    assert rig.vault.kek() != rig.kek
    other.follow(rotated)
    assert other.kek() == rig.vault.kek()
    assert sealing.parse_key((tmp_path / "other-kek").read_text()) == rig.vault.kek()
    cluster = rig.view.cluster()
    assert cluster is not None
    assert rig.vault.ca_pair(cluster, rotated).key_pem == rig.ca.key_pem
    # a manager that was away for two rotations holds a key that opens nothing any more
    away = Vault(tmp_path / "away-kek")
    away.hold(rig.kek, persist=True)
    await rig.keys.rotate()
    away.follow(await stored_secrets(rig))
    assert away.locked
    assert not (tmp_path / "away-kek").exists()


async def test_the_previous_key_still_unlocks_within_one_rotation(
    rig: ManagerRig, tmp_path: Path
) -> None:
    await rig.keys.rotate()
    secrets = await stored_secrets(rig)
    restarted = Vault(tmp_path / "restarted")
    restarted.unlock(sealing.format_key(rig.kek), secrets)
    assert restarted.kek() == rig.vault.kek()


async def test_a_swarm_without_autolock_keeps_its_rekey_when_autolock_is_turned_off(
    rig: ManagerRig,
) -> None:
    await rig.keys.set_autolock(True)
    before = await stored_secrets(rig)
    await rig.keys.set_autolock(False)
    after = await stored_secrets(rig)
    assert (after.rekey_from, after.kek_id) == (before.rekey_from, before.kek_id)


def test_store_certificates_are_the_store_ca_s_and_name_no_role() -> None:
    store_ca = ca.create_ca("c1", ca.STORE_CA_NAME)
    cluster_ca = ca.create_ca("c1")
    cert = ca.sign_store_member(store_ca, ca.make_csr(ca.new_key_pem()), "n1", "c1", ["10.0.0.1"])
    ca.verify_signed_by(cert, store_ca.cert_pem)
    with pytest.raises(Forbidden, match="not issued"):
        ca.verify_signed_by(cert, cluster_ca.cert_pem)
    with pytest.raises(Forbidden, match="no Ferry node role"):
        ca.identity_of_der(ca.ca_der(cert))


async def test_the_key_goes_to_managers_of_the_swarm_and_never_under_autolock(
    rig: ManagerRig,
) -> None:
    await rig.add_node("m2", "h2", Role.MANAGER)
    await rig.add_node("w1", "h3")
    assert sealing.parse_key(hand_over(rig.vault, rig.view, "m2", "manager")) == rig.kek
    with pytest.raises(Forbidden, match="only a manager"):
        hand_over(rig.vault, rig.view, "w1", "worker")
    with pytest.raises(Forbidden, match="only a manager"):
        hand_over(rig.vault, rig.view, "w1", "manager")  # a role its record does not have
    with pytest.raises(Forbidden, match="only a manager"):
        hand_over(rig.vault, rig.view, "gone", "manager")
    await rig.nodes.mark_left("m2")
    with pytest.raises(Forbidden, match="only a manager"):
        hand_over(rig.vault, rig.view, "m2", "manager")
    await rig.add_node("m3", "h4", Role.MANAGER)
    await rig.keys.set_autolock(True)
    with pytest.raises(Forbidden, match="autolocked"):
        hand_over(rig.vault, rig.view, "m3", "manager")
