"""A swarm formed by an older ferryd: its managers seal the clear CA key, share the KEK, make
their store certificates and move etcd's TLS one compatible step at a time."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferry.manager import ca, sealing
from ferry.manager.etcd_member import FINAL_TLS_PHASE, EtcdConfig
from ferry.manager.join import recorded_tls_phase
from ferry.manager.store import Put, keys
from ferry.manager.store_upgrade import StoreUpgrade, next_tls_phase
from ferry.manager.vault import Vault
from ferry.model.cluster import ClusterSecrets
from ferry.model.codec import decode, encode
from ferry.model.node import Role
from tests.unit.conftest import ManagerRig


# the TLS phases ------------------------------------------------------------------------------
def accepts(phase: int, presented_by: int) -> bool:
    """Whether a member at ``phase`` accepts the peer certificate a member at ``presented_by``
    shows (the table in etcd_member.py): node certificates up to phase 1, store ones after;
    trust in the cluster CA up to phase 2, in the store CA from phase 1."""
    store_cert = presented_by >= 2
    return phase >= 1 if store_cert else phase <= 2


@pytest.mark.parametrize(
    ("me", "phases", "expected"),
    [
        ("a", {"a": 0}, FINAL_TLS_PHASE),  # alone: straight to the end
        ("a", {"a": 0, "b": None}, 1),  # b runs an older ferryd: phase 1 suits it
        ("a", {"a": 1, "b": None}, 1),  # ...but phase 2 would not
        ("a", {"a": 0, "b": 0}, 1),
        ("b", {"a": 0, "b": 0}, 0),  # one at a time, in id order
        ("b", {"a": 1, "b": 0}, 1),
        ("a", {"a": 1, "b": 1}, 2),
        ("b", {"a": 1, "b": 1}, 1),
        ("a", {"a": 2, "b": 1}, 2),  # waits for the slowest
        ("b", {"a": 2, "b": 1}, 2),
        ("a", {"a": 2, "b": 2}, 3),
        ("b", {"a": 3, "b": 2}, 3),
        ("b", {"a": 3, "b": 3}, 3),
    ],
)
def test_the_next_phase_is_one_step_that_keeps_every_member_compatible(
    me: str, phases: dict[str, int | None], expected: int
) -> None:
    assert next_tls_phase(me, phases) == expected


@pytest.mark.parametrize("seed", range(20))
def test_any_order_of_steps_keeps_every_pair_of_members_talking(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"m{i}" for i in range(rng.randint(2, 5))]
    phases: dict[str, int | None] = {n: rng.choice([None, 0]) for n in names}
    for _ in range(200):
        who = rng.choice(names)
        if phases[who] is None:  # upgraded to this version at some moment
            phases[who] = 0
            continue
        phases[who] = next_tls_phase(who, phases)
        for a, b in itertools.permutations(names, 2):
            pa, pb = phases[a] or 0, phases[b] or 0
            assert accepts(pa, pb), f"{a}@{pa} refuses {b}@{pb} in {phases}"
    phases = dict.fromkeys(names, 0)
    for _ in range(len(names) * FINAL_TLS_PHASE):
        for name in names:
            phases[name] = next_tls_phase(name, phases)
    assert set(phases.values()) == {FINAL_TLS_PHASE}  # and they all get there


# sealing and sharing the key -----------------------------------------------------------------
@dataclass
class FakeMember:
    config: EtcdConfig

    def healthy(self) -> None:
        pass


def member(tmp: Path, rig: ManagerRig, phase: int) -> FakeMember:
    certs = ca.CertPaths(tmp / "certs")
    certs.directory.mkdir(parents=True)
    certs.ca.write_bytes(rig.ca.cert_pem)
    config = EtcdConfig("m1", tmp / "etcd", "10.99.0.11", certs, "m1=x", "new", tls_phase=phase)
    return FakeMember(config)


async def older_swarm(rig: ManagerRig) -> None:
    """Make the rig's store look like one an older ferryd formed: the CA key in clear."""
    legacy = ClusterSecrets("w" * 25, "m" * 25, ca_key_pem=rig.ca.key_pem.decode())
    revision = await rig.store.commit([Put(keys.SECRETS, encode(legacy))])
    assert revision is not None
    await rig.feed.wait_for(revision)
    await rig.add_node("m1", "h1", Role.MANAGER)


def upgrade(rig: ManagerRig, vault: Vault, fake: FakeMember, key: str | None) -> StoreUpgrade:
    async def fetch_key() -> str:
        assert key is not None
        return key

    return StoreUpgrade(
        node_id="m1", cluster_id="cluster0", store=rig.store, view=rig.view, feed=rig.feed,  # type: ignore[arg-type]
        vault=vault, member=fake, fetch_key=fetch_key,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_the_first_manager_seals_the_clear_key_and_keeps_the_kek_on_disk(
    rig: ManagerRig, tmp_path: Path
) -> None:
    await older_swarm(rig)
    fake = member(tmp_path, rig, FINAL_TLS_PHASE)
    vault = Vault(fake.config.certs.kek)
    step = upgrade(rig, vault, fake, None)
    await step.reconcile()
    kv = await rig.store.get(keys.SECRETS)
    assert kv is not None
    secrets = decode(ClusterSecrets, kv.value)
    assert secrets.sealed and secrets.ca_key_pem == ""
    assert rig.ca.key_pem.split(b"\n")[1] not in kv.value
    assert sealing.parse_key(fake.config.certs.kek.read_text()) == vault.kek()
    cluster = rig.view.cluster()
    assert cluster is not None
    assert vault.ca_pair(cluster, secrets).key_pem == rig.ca.key_pem
    await step.reconcile()  # the next pass: its own store certificate, its phase recorded
    ca.verify_signed_by(
        fake.config.certs.store_cert.read_bytes(), secrets.store_ca_cert_pem.encode()
    )
    await rig.feed.wait_for(rig.store.revision)
    assert recorded_tls_phase(rig.view, "m1") == FINAL_TLS_PHASE


async def test_another_manager_gets_the_kek_from_one_that_holds_it(
    rig: ManagerRig, tmp_path: Path
) -> None:
    await older_swarm(rig)
    first = member(tmp_path / "first", rig, FINAL_TLS_PHASE)
    first_vault = Vault(first.config.certs.kek)
    await upgrade(rig, first_vault, first, None).reconcile()
    second = member(tmp_path / "second", rig, FINAL_TLS_PHASE)
    second_vault = Vault(second.config.certs.kek)
    key = sealing.format_key(first_vault.kek())
    await upgrade(rig, second_vault, second, key).reconcile()
    assert second_vault.kek() == first_vault.kek()
    assert second.config.certs.have_store()


async def test_a_wrong_key_from_another_manager_is_not_taken(
    rig: ManagerRig, tmp_path: Path
) -> None:
    await older_swarm(rig)
    first = member(tmp_path / "first", rig, FINAL_TLS_PHASE)
    await upgrade(rig, Vault(first.config.certs.kek), first, None).reconcile()
    second = member(tmp_path / "second", rig, FINAL_TLS_PHASE)
    second_vault = Vault(second.config.certs.kek)
    wrong = sealing.format_key(sealing.new_kek())
    with pytest.raises(sealing.WrongUnlockKey):
        await upgrade(rig, second_vault, second, wrong).reconcile()
    assert second_vault.locked and not second.config.certs.have_store()
