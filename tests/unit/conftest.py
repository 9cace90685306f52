"""An in-process manager over the in-memory store: the manager's logic without etcd."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferry.manager import ca, sealing
from ferry.manager.feed import StoreFeed
from ferry.manager.join import JoinService
from ferry.manager.nodes import NodeOps
from ferry.manager.sessions import SessionHub
from ferry.manager.store import Put, keys
from ferry.manager.store.memory import MemoryStore
from ferry.manager.store.schema import MANAGER_TYPES
from ferry.manager.store.view import ClusterView
from ferry.manager.vault import KeyOps, Vault, sealed_secrets
from ferry.model.cluster import ClusterInfo, ClusterSecrets
from ferry.model.codec import encode
from ferry.model.mirror import Mirror
from ferry.model.node import Node, Role
from ferry.runtime.images import ImageStore

_CA = ca.create_ca("cluster0")


def put_image(images_dir: Path, name: str = "tools:latest") -> None:
    """An image of one empty layer, imported as ``docker import`` would: for tests that
    create containers without unpacking anything much."""
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w"):
        pass
    images_dir.mkdir(parents=True, exist_ok=True)
    tar = images_dir.parent / f".{name.replace('/', '_')}.tar"
    tar.write_bytes(empty.getvalue())
    ImageStore(images_dir).import_tar(tar, name)
    tar.unlink()


_STORE_CA = ca.create_ca("cluster0", ca.STORE_CA_NAME)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ManagerRig:
    clock: Clock
    store: MemoryStore
    mirror: Mirror
    view: ClusterView
    feed: StoreFeed
    nodes: NodeOps
    hub: SessionHub
    joins: JoinService
    ca: ca.KeyPair
    store_ca: ca.KeyPair
    secrets: ClusterSecrets
    kek: bytes
    vault: Vault
    keys: KeyOps

    async def add_node(self, node_id: str, hostname: str, role: Role = Role.WORKER) -> Node:
        node = Node(node_id=node_id, hostname=hostname, role=role, addr=f"10.99.0.{len(hostname)}")
        rev = await self.store.commit([Put(keys.node(node_id), encode(node))])
        assert rev is not None
        await self.feed.wait_for(rev)
        return node


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[ManagerRig]:
    """A manager of a swarm formed by this version: its CA keys sealed with a KEK it holds
    (kept in ``tmp_path/kek``: no autolock)."""
    clock = Clock()
    store = MemoryStore(clock)
    kek = sealing.new_kek()
    secrets = sealed_secrets(
        ClusterSecrets("w" * 25, "m" * 25),
        kek,
        ca_key_pem=_CA.key_pem,
        store_ca=_STORE_CA,
        autolock=False,
    )
    vault = Vault(tmp_path / "kek")
    vault.hold(kek, persist=True)
    info = ClusterInfo("cluster0", "2026-01-01T00:00:00Z", _CA.cert_pem.decode())
    await store.commit([Put(keys.CLUSTER, encode(info)), Put(keys.SECRETS, encode(secrets))])
    mirror = Mirror(MANAGER_TYPES)
    view = ClusterView(mirror)
    feed = StoreFeed(store, mirror)
    feed.start()
    await feed.wait_for(store.revision)
    nodes = NodeOps(store, view, feed)
    hub = SessionHub(store, mirror, view, "mgr")
    joins = JoinService(store, None, view, nodes, vault)
    keys_ = KeyOps(store, view, feed, vault, nodes)
    yield ManagerRig(
        clock, store, mirror, view, feed, nodes, hub, joins, _CA, _STORE_CA, secrets, kek, vault,
        keys_,
    )  # fmt: skip
    await feed.stop()


@pytest.fixture
def as_root() -> None:
    """Unpacking archives sets owners and makes device nodes: root only. Skipped without root
    locally; under CI (FERRY_CI=1) a failure, never a skip."""
    if os.geteuid() == 0:
        return
    if os.environ.get("FERRY_CI"):
        pytest.fail("unpacking archives needs root (mknod, chown)")
    pytest.skip("unpacking archives needs root (mknod, chown)")
