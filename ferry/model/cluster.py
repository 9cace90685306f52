"""Cluster-wide facts, and the secrets kept apart from them."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.model.ports import DEFAULT_DATA_PATH_PORT
from ferry.model.root_rotation import RootRotation
from ferry.model.service import TASK_HISTORY

# Docker's defaults for `swarm init`: overlay subnets are carved from this pool
DEFAULT_POOL = "10.0.0.0/8"
DEFAULT_SUBNET_SIZE = 24


NODE_CERT_EXPIRY_S = 365 * 24 * 3600  # Ferry's default (Docker's is 90 days)
MIN_NODE_CERT_EXPIRY_S = 3600  # swarmkit's ca.MinNodeCertExpiration


RETIRED_ROOTS_KEPT = 16


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    created_at: str
    ca_cert_pem: str
    default_pool: str = DEFAULT_POOL
    subnet_size: int = DEFAULT_SUBNET_SIZE
    vni_start: int = 4097
    # Docker's Orchestration.TaskHistoryRetentionLimit (``swarm update --task-history-limit``):
    # finished tasks kept per slot; negative keeps them all (swarmkit's task reaper)
    task_history: int = TASK_HISTORY
    # Docker's CAConfig.NodeCertExpiry (``swarm update --cert-expiry``): how long the node
    # certificates signed from now on are valid, in seconds
    node_cert_expiry_s: int = NODE_CERT_EXPIRY_S
    # Docker's CAConfig.ForceRotate: a counter; ``swarm ca --rotate`` asks for one more
    ca_force_rotate: int = 0
    # a root CA rotation under way (``model/root_rotation.py``); its key is in the secrets
    root_rotation: RootRotation | None = None
    # the public keys (base64 DER) of the roots rotated away, newest last (at most
    # RETIRED_ROOTS_KEPT): a rotation never goes back to a key its holders may still have
    retired_root_keys: tuple[str, ...] = ()
    # Docker's DataPathPort (``swarm init --data-path-port``): the UDP port of the swarm's
    # VXLAN, fixed at init (a record written before swarms chose one decodes to 4789)
    data_path_port: int = DEFAULT_DATA_PATH_PORT


@dataclass(frozen=True)
class ClusterSecrets:
    """What only managers read (never streamed to agents).

    The two CA keys are sealed with the managers' key-encryption key (``manager/sealing.py``):
    the cluster CA signs node certificates, the store CA the managers' etcd certificates.
    ``kek_id`` names the KEK that seals them; after a rotation, ``rekey_sealed`` holds that KEK
    sealed with the previous one (``rekey_from``), so a manager that holds the previous key
    follows without being told the new one. ``ca_key_pem`` is the clear CA key of a swarm
    formed before keys were sealed: empty once a manager has migrated it. ``data_key_sealed``
    is the key that seals the data of swarm secrets (``manager/secrets.py``), itself sealed with
    the KEK: a KEK rotation reseals it, never each secret; empty until the first secret.
    """

    worker_secret: str
    manager_secret: str
    ca_key_sealed: str = ""
    store_ca_cert_pem: str = ""
    store_ca_key_sealed: str = ""
    kek_id: str = ""
    autolock: bool = False
    rekey_from: str = ""
    rekey_sealed: str = ""
    ca_key_pem: str = ""
    data_key_sealed: str = ""
    rotation_ca_key_sealed: str = ""  # the new root's key while a root rotation is under way

    @property
    def sealed(self) -> bool:
        return bool(self.kek_id) and not self.ca_key_pem
