"""Request bodies of /containers, /exec, /networks and /images (Docker's shapes)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

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
    IPv4Address: str = ""


class EndpointSettings(DockerModel):
    Aliases: list[str] | None = None
    IPAMConfig: EndpointIpam | None = None


class NetworkConnect(DockerModel):
    Container: str
    EndpointConfig: EndpointSettings | None = None


class NetworkDisconnect(DockerModel):
    Container: str
    Force: bool = False


class HostConfig(DockerModel):
    NetworkMode: str = ""
    AutoRemove: bool = False
    PortBindings: dict[str, list[dict[str, str]] | None] | None = None


class NetworkingConfig(DockerModel):
    EndpointsConfig: dict[str, EndpointSettings | None] | None = None


_HostConfig = HostConfig
_NetworkingConfig = NetworkingConfig


class ContainerCreate(DockerModel):
    Image: str
    Cmd: list[str] | None = None
    Entrypoint: list[str] | None = None
    Env: list[str] | None = None
    Hostname: str = ""
    WorkingDir: str = ""
    Labels: dict[str, str] | None = None
    Tty: bool = False
    OpenStdin: bool = False
    ExposedPorts: dict[str, Any] | None = None
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


class ExecStart(DockerModel):
    Detach: bool = False
    Tty: bool = False
