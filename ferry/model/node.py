"""Nodes of the swarm: what a node is (spec) and whether it is there (session)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    MANAGER = "manager"
    WORKER = "worker"


class Availability(StrEnum):
    ACTIVE = "active"
    PAUSE = "pause"
    DRAIN = "drain"


@dataclass(frozen=True)
class Node:
    node_id: str
    hostname: str
    role: Role
    addr: str
    availability: Availability = Availability.ACTIVE
    labels: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    engine_version: str = ""
    ncpu: int = 0
    memory_bytes: int = 0
    images: tuple[str, ...] = ()  # images this node can run besides "host" (it reports them)
    ports: tuple[str, ...] = ()  # "tcp/8080": host ports in use there (listeners, run -p)
    wg_key: str = ""  # its WireGuard public key, for encrypted overlays (it reports it)
    left: bool = False


@dataclass(frozen=True)
class NodeSession:
    """Lease-bound proof that a node's agent is connected: its absence means the node is down."""

    node_id: str
    lease_id: int
    manager_id: str
    since: str
