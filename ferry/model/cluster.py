"""Cluster-wide facts, and the secrets kept apart from them."""

from __future__ import annotations

from dataclasses import dataclass

# Docker's defaults for `swarm init`: overlay subnets are carved from this pool
DEFAULT_POOL = "10.0.0.0/8"
DEFAULT_SUBNET_SIZE = 24


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    created_at: str
    ca_cert_pem: str
    default_pool: str = DEFAULT_POOL
    subnet_size: int = DEFAULT_SUBNET_SIZE
    vni_start: int = 4097


@dataclass(frozen=True)
class ClusterSecrets:
    ca_key_pem: str
    worker_secret: str
    manager_secret: str
