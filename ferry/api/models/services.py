"""Docker's ServiceSpec, the subset Ferry honours; the fields of ``ContainerSpec`` and of the
task template it does not honour are refused by name when given a value
(``api.run_options.refused``)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ferry.api.models.base import DockerModel
from ferry.api.models.containers import HealthConfigBody, MountBody


class ContainerSpecModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Image: str = ""
    Command: list[str] | None = None
    Args: list[str] | None = None
    Env: list[str] | None = None
    Init: bool | None = None
    StopGracePeriod: int | None = None  # nanoseconds
    User: str = ""
    Dir: str = ""
    Mounts: list[MountBody] | None = None
    ReadOnly: bool = False
    CapabilityAdd: list[str] | None = None
    CapabilityDrop: list[str] | None = None
    HealthCheck: HealthConfigBody | None = None
    Isolation: str = ""


class ResourceModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    NanoCPUs: int = 0
    MemoryBytes: int = 0
    Pids: int = 0


class ResourcesModel(DockerModel):
    Limits: ResourceModel | None = None
    Reservations: ResourceModel | None = None


class RestartPolicyModel(DockerModel):
    Condition: str = "any"
    Delay: int | None = None
    MaxAttempts: int | None = None


class PlacementModel(DockerModel):
    Constraints: list[str] | None = None


class NetworkAttachmentModel(DockerModel):
    Target: str
    Aliases: list[str] | None = None


class TaskTemplateModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    ContainerSpec: ContainerSpecModel = Field(default_factory=ContainerSpecModel)
    Resources: ResourcesModel | None = None
    RestartPolicy: RestartPolicyModel | None = None
    Placement: PlacementModel | None = None
    Networks: list[NetworkAttachmentModel] | None = None
    ForceUpdate: int = 0


class ReplicatedModel(DockerModel):
    Replicas: int | None = None


class ModeModel(DockerModel):
    Replicated: ReplicatedModel | None = None
    Global: dict[str, object] | None = None
    ReplicatedJob: dict[str, object] | None = None  # refused: Ferry runs no jobs
    GlobalJob: dict[str, object] | None = None


class PortConfigModel(DockerModel):
    Protocol: str = "tcp"
    TargetPort: int = 0
    PublishedPort: int = 0
    PublishMode: str = "ingress"


class EndpointSpecModel(DockerModel):
    Mode: str = "vip"
    Ports: list[PortConfigModel] | None = None


class ServiceSpecModel(DockerModel):
    Name: str = ""
    Labels: dict[str, str] | None = None
    TaskTemplate: TaskTemplateModel = Field(default_factory=TaskTemplateModel)
    Mode: ModeModel | None = None
    Networks: list[NetworkAttachmentModel] | None = None  # the old place for networks
    EndpointSpec: EndpointSpecModel | None = None
