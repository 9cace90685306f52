"""/swarm and /nodes: Docker's swarm and node shapes."""

from __future__ import annotations

from pydantic import Field

from ferry.api.models.base import DockerModel, ObjectVersion


class SwarmInitRequest(DockerModel):
    ListenAddr: str = "0.0.0.0:2377"
    AdvertiseAddr: str = ""
    DefaultAddrPool: list[str] = Field(default_factory=list)
    SubnetSize: int = 0
    Availability: str = "active"
    ForceNewCluster: bool = False


class SwarmJoinRequest(DockerModel):
    ListenAddr: str = "0.0.0.0:2377"
    AdvertiseAddr: str = ""
    RemoteAddrs: list[str]
    JoinToken: str
    Availability: str = "active"


class JoinTokens(DockerModel):
    Worker: str = ""
    Manager: str = ""


class SwarmSpec(DockerModel):
    Name: str = "default"
    Labels: dict[str, str] = Field(default_factory=dict)


_JoinTokens = JoinTokens


class SwarmInspect(DockerModel):
    ID: str
    Version: ObjectVersion
    CreatedAt: str
    UpdatedAt: str
    Spec: SwarmSpec = Field(default_factory=SwarmSpec)
    DefaultAddrPool: list[str]
    SubnetSize: int
    DataPathPort: int = 4789
    JoinTokens: _JoinTokens
    RootRotationInProgress: bool = False


class NodeSpec(DockerModel):
    Name: str = ""
    Labels: dict[str, str] = Field(default_factory=dict)
    Role: str = "worker"
    Availability: str = "active"


class EngineDescription(DockerModel):
    EngineVersion: str = ""


class NodePlatform(DockerModel):
    Architecture: str = "x86_64"
    OS: str = "linux"


class NodeResources(DockerModel):
    NanoCPUs: int = 0
    MemoryBytes: int = 0


class NodeDescription(DockerModel):
    Hostname: str
    Platform: NodePlatform = Field(default_factory=NodePlatform)
    Resources: NodeResources = Field(default_factory=NodeResources)
    Engine: EngineDescription = Field(default_factory=EngineDescription)


class NodeStatus(DockerModel):
    State: str
    Message: str = ""
    Addr: str = ""


class ManagerStatus(DockerModel):
    Leader: bool = False
    Reachability: str = "reachable"
    Addr: str = ""


_ManagerStatus = ManagerStatus


class NodeObject(DockerModel):
    ID: str
    Version: ObjectVersion
    CreatedAt: str
    UpdatedAt: str
    Spec: NodeSpec
    Description: NodeDescription
    Status: NodeStatus
    ManagerStatus: _ManagerStatus | None = None
