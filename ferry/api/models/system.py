"""/version and /info."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ferry.api.models.base import DockerModel
from ferry.api.models.swarm import TLSInfo as _TLSInfo
from ferry.model.ports import DEFAULT_DATA_PATH_PORT


class ComponentVersion(DockerModel):
    Name: str
    Version: str
    Details: dict[str, str] = Field(default_factory=dict)


class Platform(DockerModel):
    Name: str = "Ferry"


_Platform = Platform


class VersionInfo(DockerModel):
    Platform: _Platform = Field(default_factory=_Platform)
    Components: list[ComponentVersion] = Field(default_factory=list)
    Version: str
    ApiVersion: str
    MinAPIVersion: str
    GitCommit: str = ""
    GoVersion: str = ""
    Os: str = "linux"
    Arch: str = "amd64"
    KernelVersion: str = ""
    BuildTime: str = ""


class PeerNode(DockerModel):
    NodeID: str
    Addr: str


class ClusterSummary(DockerModel):
    ID: str = ""
    CreatedAt: str = ""
    UpdatedAt: str = ""
    DefaultAddrPool: list[str] = Field(default_factory=list)
    SubnetSize: int = 24
    DataPathPort: int = DEFAULT_DATA_PATH_PORT
    Spec: dict[str, Any] = Field(default_factory=dict)
    # the root nodes are to trust (docker node ls's TLSStatus compares each node's with it)
    TLSInfo: _TLSInfo = Field(default_factory=_TLSInfo)
    RootRotationInProgress: bool = False


class SwarmInfo(DockerModel):
    NodeID: str = ""
    NodeAddr: str = ""
    LocalNodeState: str = "inactive"
    ControlAvailable: bool = False
    Error: str = ""
    RemoteManagers: list[PeerNode] | None = None
    Nodes: int = 0
    Managers: int = 0
    Cluster: ClusterSummary | None = None


class SystemInfo(DockerModel):
    ID: str = ""
    Containers: int = 0
    ContainersRunning: int = 0
    ContainersPaused: int = 0
    ContainersStopped: int = 0
    Images: int = 0
    Driver: str = "ferry"
    Name: str = ""
    ServerVersion: str = ""
    OperatingSystem: str = ""
    OSType: str = "linux"
    Architecture: str = "x86_64"
    KernelVersion: str = ""
    NCPU: int = 0
    MemTotal: int = 0
    DockerRootDir: str = ""
    Swarm: SwarmInfo = Field(default_factory=SwarmInfo)
    Plugins: dict[str, list[str]] = Field(default_factory=dict)
    # Docker's RegistryServiceConfig: Mirrors (URLs), IndexConfigs (by registry host: Secure,
    # Mirrors), InsecureRegistryCIDRs; `docker info` prints "Registry Mirrors" and "Insecure
    # Registries" from it
    RegistryConfig: dict[str, Any] = Field(default_factory=dict)
    Warnings: list[str] = Field(default_factory=list)
