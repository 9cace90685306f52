"""Request bodies of /containers, /exec, /networks and /images (Docker's shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from ferry.api.models.base import DockerModel


class IpamConfigEntry(DockerModel):
    Subnet: str = ""
    IPRange: str = ""
    Gateway: str = ""


class Ipam(DockerModel):
    Driver: str = "default"
    # "Config" as a field name would be taken by pydantic for a class-based model config
    Subnets: list[IpamConfigEntry] = Field(default_factory=list, alias="Config")
    Options: dict[str, str] | None = None


class NetworkCreate(DockerModel):
    Name: str
    Driver: str = "bridge"
    Scope: str = ""
    IPAM: Ipam | None = None
    Internal: bool = False
    Attachable: bool = False
    Ingress: bool = False
    EnableIPv6: bool | None = False
    Options: dict[str, str] | None = None
    Labels: dict[str, str] | None = None


class EndpointIpam(DockerModel):
    """Fields not declared here (IPv6Address, LinkLocalIPs) are refused when given a value."""

    model_config = ConfigDict(extra="allow")
    IPv4Address: str = ""


class EndpointSettings(DockerModel):
    """Fields not declared here (MacAddress, Links, DriverOpts…) are refused when given a
    value (``run_options.check_supported``)."""

    model_config = ConfigDict(extra="allow")
    Aliases: list[str] | None = None
    IPAMConfig: EndpointIpam | None = None


class NetworkConnect(DockerModel):
    Container: str
    EndpointConfig: EndpointSettings | None = None


class NetworkDisconnect(DockerModel):
    Container: str
    Force: bool = False


class RestartPolicyBody(DockerModel):
    Name: str = ""
    MaximumRetryCount: int = 0


class TmpfsOptionsBody(DockerModel):
    SizeBytes: int = 0
    Mode: int = 0


class MountBody(DockerModel):
    """Docker's ``Mount`` (``--mount``); the fields Ferry does not apply are refused."""

    model_config = ConfigDict(extra="allow")
    Target: str = ""
    Source: str = ""
    Type: str = "volume"
    ReadOnly: bool = False
    TmpfsOptions: TmpfsOptionsBody | None = None


class UlimitBody(DockerModel):
    Name: str
    Soft: int
    Hard: int


class LogConfigBody(DockerModel):
    Type: str = ""
    Config: dict[str, str] | None = None


class HostConfig(DockerModel):
    """Docker's ``HostConfig``: the fields below are honoured; any other one given a value is
    refused by name (``api.run_options.refused``)."""

    model_config = ConfigDict(extra="allow")
    NetworkMode: str = ""
    AutoRemove: bool = False
    PortBindings: dict[str, list[dict[str, str]] | None] | None = None
    PublishAllPorts: bool = False
    Binds: list[str] | None = None
    Mounts: list[MountBody] | None = None
    Tmpfs: dict[str, str] | None = None
    RestartPolicy: RestartPolicyBody | None = None
    CapAdd: list[str] | None = None
    CapDrop: list[str] | None = None
    Privileged: bool = False
    ReadonlyRootfs: bool = False
    SecurityOpt: list[str] | None = None
    GroupAdd: list[str] | None = None
    ShmSize: int = 0
    Sysctls: dict[str, str] | None = None
    Init: bool | None = None
    Memory: int = 0
    MemoryReservation: int = 0
    NanoCpus: int = 0
    CpuShares: int = 0
    CpuPeriod: int = 0
    CpuQuota: int = 0
    PidsLimit: int | None = None
    Ulimits: list[UlimitBody] | None = None
    ExtraHosts: list[str] | None = None
    LogConfig: LogConfigBody | None = None
    ConsoleSize: list[int] | None = None
    # Docker's defaults for these are accepted as they are (what the docker CLI sends)
    IpcMode: str = ""
    CgroupnsMode: str = ""
    MemorySwappiness: int | None = None
    Isolation: str = ""


class NetworkingConfig(DockerModel):
    EndpointsConfig: dict[str, EndpointSettings | None] | None = None


_HostConfig = HostConfig
_NetworkingConfig = NetworkingConfig


class HealthConfigBody(DockerModel):
    """Docker's HealthConfig: durations in nanoseconds, 0 for the default."""

    Test: list[str] | None = None
    Interval: int = 0
    Timeout: int = 0
    Retries: int = 0
    StartPeriod: int = 0
    StartInterval: int = 0


class ContainerCreate(DockerModel):
    """Docker's ``ContainerConfig`` with ``HostConfig`` and ``NetworkingConfig``; fields not
    declared here are refused when given a value."""

    model_config = ConfigDict(extra="allow")
    Image: str
    Cmd: list[str] | None = None
    Entrypoint: list[str] | None = None
    Env: list[str] | None = None
    Hostname: str = ""
    WorkingDir: str = ""
    Labels: dict[str, str] | None = None
    User: str = ""
    Tty: bool = False
    OpenStdin: bool = False
    StdinOnce: bool = False
    AttachStdin: bool = False
    AttachStdout: bool = True
    AttachStderr: bool = True
    ExposedPorts: dict[str, Any] | None = None
    Volumes: dict[str, Any] | None = None
    StopSignal: str = ""
    StopTimeout: int | None = None
    Healthcheck: HealthConfigBody | None = None
    HostConfig: _HostConfig | None = None
    NetworkingConfig: _NetworkingConfig | None = None


class ExecCreate(DockerModel):
    Cmd: list[str]
    Env: list[str] | None = None
    Tty: bool = False
    AttachStdin: bool = False
    AttachStdout: bool = True
    AttachStderr: bool = True
    WorkingDir: str = ""
    User: str = ""
    Privileged: bool = False
    DetachKeys: str = ""


class ExecStart(DockerModel):
    Detach: bool = False
    Tty: bool = False
