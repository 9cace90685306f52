"""Docker's ServiceSpec, the subset Ferry honours (unknown fields are ignored)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.models.base import DockerModel


class ContainerSpecModel(DockerModel):
    Image: str = ""
    Command: list[str] | None = None
    Args: list[str] | None = None
    Env: list[str] | None = None
    Init: bool | None = None
    StopGracePeriod: int | None = None  # nanoseconds


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
    ContainerSpec: ContainerSpecModel = Field(default_factory=ContainerSpecModel)
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
