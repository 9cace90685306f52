"""A manager's credentials: made at ``swarm init``, received at a manager join, kept in
``certs/``.

What lies where (see README, Security model):
- every node: the cluster CA certificate, its node certificate and key (``ca.pem``,
  ``node.pem``, ``node.key``), for the cluster API on 2377;
- managers only: the store CA certificate and the manager's etcd certificate and key
  (``store-ca.pem``, ``store.pem``, ``store.key``), and — unless autolocked — the KEK (``kek``);
- the store: both CA keys, sealed with the KEK; never a key in clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.manager import ca, sealing
from ferry.manager.etcd_member import FINAL_TLS_PHASE
from ferry.manager.store import Put, keys
from ferry.manager.tokens import new_secret
from ferry.manager.vault import sealed_secrets
from ferry.model.cluster import ClusterInfo, ClusterSecrets
from ferry.model.codec import encode
from ferry.model.node import Node


@dataclass(frozen=True)
class Founding:
    """The keys of a new swarm and of its first manager."""

    cluster_ca: ca.KeyPair
    store_ca: ca.KeyPair
    kek: bytes
    node_cert_pem: bytes
    node_key_pem: bytes
    store_cert_pem: bytes
    store_key_pem: bytes


def found(cluster_id: str, node_id: str, addr: str) -> Founding:
    """Both CAs, a KEK, and the first manager's node and store certificates for ``addr``."""
    cluster_ca = ca.create_ca(cluster_id)
    store_ca = ca.create_ca(cluster_id, ca.STORE_CA_NAME)
    ips = [addr, "127.0.0.1"]
    node_key = ca.new_key_pem()
    identity = ca.Identity(node_id, "manager", cluster_id)
    node_cert = ca.sign_node(cluster_ca, ca.make_csr(node_key), identity, ips)
    store_key = ca.new_key_pem()
    store_cert = ca.sign_store_member(store_ca, ca.make_csr(store_key), node_id, cluster_id, ips)
    return Founding(
        cluster_ca, store_ca, sealing.new_kek(), node_cert, node_key, store_cert, store_key
    )


def bootstrap_ops(
    founding: Founding, cluster: ClusterInfo, node: Node, *, autolock: bool
) -> list[Put]:
    """What ``swarm init`` writes into the new store: the cluster, its sealed secrets, the
    first manager and its etcd TLS phase."""
    secrets = sealed_secrets(
        ClusterSecrets(worker_secret=new_secret(), manager_secret=new_secret()),
        founding.kek,
        ca_key_pem=founding.cluster_ca.key_pem,
        store_ca=founding.store_ca,
        autolock=autolock,
    )
    return [
        Put(keys.CLUSTER, encode(cluster)),
        Put(keys.SECRETS, encode(secrets)),
        Put(keys.node(node.node_id), encode(node)),
        Put(keys.store_tls(node.node_id), encode(FINAL_TLS_PHASE)),
    ]
