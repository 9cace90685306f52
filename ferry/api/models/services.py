"""Docker's ServiceSpec (API v1.47), the subset Ferry honours. Every model keeps the fields it
does not declare (``extra="allow"``) so that ``service_options.check_spec`` refuses each one
given a value by name; the fields Docker has and Ferry does not honour but whose default the
docker CLI always sends (UpdateConfig, RollbackConfig, RestartPolicy.MaxAttempts…) are
declared and accepted only at that default."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ferry.api.models.base import DockerModel
from ferry.api.models.containers import HealthConfigBody, MountBody


class FileTargetModel(DockerModel):
    """A secret's or config's file in the task (Docker's SecretReferenceFileTarget)."""

    model_config = ConfigDict(extra="allow")
    Name: str = ""
    UID: str = "0"
    GID: str = "0"
    Mode: int = 0o444


class SecretRefModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    File: FileTargetModel | None = None
    SecretID: str = ""
    SecretName: str = ""


class ConfigRefModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    File: FileTargetModel | None = None
    Runtime: dict[str, object] | None = None  # Windows credential specs: refused
    ConfigID: str = ""
    ConfigName: str = ""


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
    Labels: dict[str, str] | None = None
    Secrets: list[SecretRefModel] | None = None
    Configs: list[ConfigRefModel] | None = None


class ResourceModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    NanoCPUs: int = 0
    MemoryBytes: int = 0
    Pids: int = 0


class ResourcesModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Limits: ResourceModel | None = None
    Reservations: ResourceModel | None = None


class RestartPolicyModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Condition: str = "any"
    Delay: int | None = None  # nanoseconds
    MaxAttempts: int | None = None
    Window: int | None = None  # nanoseconds


class PlacementModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Constraints: list[str] | None = None
    Preferences: list[object] | None = None
    MaxReplicas: int | None = None
    Platforms: list[object] | None = None


class NetworkAttachmentModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Target: str
    Aliases: list[str] | None = None
    DriverOpts: dict[str, str] | None = None


class UpdateConfigModel(DockerModel):
    """UpdateConfig and RollbackConfig: how tasks roll over (durations in nanoseconds)."""

    model_config = ConfigDict(extra="allow")
    Parallelism: int | None = None
    Delay: int | None = None
    FailureAction: str | None = None
    Monitor: int | None = None
    MaxFailureRatio: float | None = None
    Order: str | None = None


class TaskTemplateModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    ContainerSpec: ContainerSpecModel = Field(default_factory=ContainerSpecModel)
    Resources: ResourcesModel | None = None
    RestartPolicy: RestartPolicyModel | None = None
    Placement: PlacementModel | None = None
    Networks: list[NetworkAttachmentModel] | None = None
    ForceUpdate: int = 0


class ReplicatedModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Replicas: int | None = None


class ModeModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Replicated: ReplicatedModel | None = None
    Global: dict[str, object] | None = None
    ReplicatedJob: dict[str, object] | None = None  # refused: Ferry runs no jobs
    GlobalJob: dict[str, object] | None = None


class PortConfigModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Name: str = ""
    Protocol: str = "tcp"
    TargetPort: int = 0
    PublishedPort: int = 0
    PublishMode: str = "ingress"


class EndpointSpecModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Mode: str = "vip"
    Ports: list[PortConfigModel] | None = None


class ServiceSpecModel(DockerModel):
    model_config = ConfigDict(extra="allow")
    Name: str = ""
    Labels: dict[str, str] | None = None
    TaskTemplate: TaskTemplateModel = Field(default_factory=TaskTemplateModel)
    Mode: ModeModel | None = None
    Networks: list[NetworkAttachmentModel] | None = None  # the old place for networks
    EndpointSpec: EndpointSpecModel | None = None
    UpdateConfig: UpdateConfigModel | None = None
    RollbackConfig: UpdateConfigModel | None = None
