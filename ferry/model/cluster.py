"""Cluster-wide facts, and the secrets kept apart from them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    created_at: str
    ca_cert_pem: str
    default_pool: str = "10.0.0.0/8"
    subnet_size: int = 24
    vni_start: int = 4097


@dataclass(frozen=True)
class ClusterSecrets:
    ca_key_pem: str
    worker_secret: str
    manager_secret: str
