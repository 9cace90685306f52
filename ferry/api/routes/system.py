"""/_ping, /version, /info."""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ferry import API_VERSION, MIN_API_VERSION, __version__
from ferry.api.models.swarm import SwarmSpec
from ferry.api.models.system import (
    ClusterSummary,
    ComponentVersion,
    PeerNode,
    SwarmInfo,
    SystemInfo,
    VersionInfo,
)
from ferry.api.routes.not_served import register_not_served
from ferry.api.routes.swarm import tls_info
from ferry.api.server import add_route, json_model
from ferry.daemon.config import DaemonConfig
from ferry.daemon.swarm import SwarmController
from ferry.kernel import host
from ferry.manager.cluster_api import PORT
from ferry.model.node import Role

Counts = Callable[[], dict[str, int]]


def version_info() -> VersionInfo:
    kernel = platform.release()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    engine = ComponentVersion(
        Name="Engine",
        Version=__version__,
        Details={
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "Os": "linux",
            "Arch": arch,
            "KernelVersion": kernel,
            "GoVersion": f"python{platform.python_version()}",
            "Experimental": "false",
        },
    )
    return VersionInfo(
        Components=[engine],
        Version=__version__,
        ApiVersion=API_VERSION,
        MinAPIVersion=MIN_API_VERSION,
        KernelVersion=kernel,
        Arch=arch,
        GoVersion=f"python{platform.python_version()}",
    )


def swarm_info(swarm: SwarmController) -> SwarmInfo:
    membership = swarm.membership
    if membership is None:
        return SwarmInfo(LocalNodeState="inactive", Error=swarm_error(swarm))
    # a locked manager is no active manager (Docker): no control, no cluster details
    state = "locked" if swarm.locked else "active" if swarm.agent is not None else "error"
    info = SwarmInfo(
        NodeID=membership.node_id,
        NodeAddr=membership.addr,
        LocalNodeState=state,
        ControlAvailable=swarm.manager is not None and not swarm.locked,
        Error=swarm_error(swarm),
        RemoteManagers=[PeerNode(NodeID="", Addr=addr) for addr in membership.managers],
    )
    manager = swarm.manager
    if manager is not None and not swarm.locked:
        view = manager.view
        nodes = [n for n in view.nodes() if not n.left]
        info.Nodes = len(nodes)
        info.Managers = len([n for n in nodes if n.role == Role.MANAGER])
        info.RemoteManagers = [
            PeerNode(NodeID=n.node_id, Addr=f"{n.addr}:{PORT}")
            for n in nodes
            if n.role == Role.MANAGER
        ]
        cluster = view.cluster()
        if cluster is not None:
            info.Cluster = ClusterSummary(
                ID=cluster.cluster_id,
                CreatedAt=cluster.created_at,
                UpdatedAt=cluster.created_at,
                DefaultAddrPool=[cluster.default_pool],
                SubnetSize=cluster.subnet_size,
                DataPathPort=cluster.data_path_port,
                Spec=SwarmSpec.running(
                    manager.autolock(),
                    cluster.task_history,
                    cluster.node_cert_expiry_s,
                    cluster.ca_force_rotate,
                ).model_dump(),
                TLSInfo=tls_info(cluster.ca_cert_pem),
                RootRotationInProgress=cluster.root_rotation is not None,
            )
    return info


def swarm_error(swarm: SwarmController) -> str:
    agent = swarm.agent
    return agent.session.last_error if agent is not None else ""


class SystemRoutes:
    def __init__(self, config: DaemonConfig, swarm: SwarmController, counts: Counts) -> None:
        self.config = config
        self.swarm = swarm
        self.counts = counts

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/_ping", self.ping, allow_head=True)
        add_route(app, "GET", "/version", self.version)
        add_route(app, "GET", "/info", self.info)
        register_not_served(app)

    async def ping(self, _request: web.Request) -> web.Response:
        state = "inactive"
        if self.swarm.locked:
            state = "locked"
        elif self.swarm.membership is not None:
            state = "active/manager" if self.swarm.manager is not None else "active/worker"
        headers = {"Api-Version": API_VERSION, "Swarm": state, "Cache-Control": "no-cache"}
        return web.Response(text="OK", headers=headers, content_type="text/plain")

    async def version(self, _request: web.Request) -> web.Response:
        return json_model(version_info())

    async def info(self, _request: web.Request) -> web.Response:
        numbers = self.counts()
        swarm = self.swarm
        body = SystemInfo(
            ID=swarm.membership.node_id if swarm.membership else "",
            Containers=numbers.get("containers", 0),
            ContainersRunning=numbers.get("running", 0),
            ContainersStopped=numbers.get("stopped", 0),
            Images=numbers.get("images", 0),
            Name=self.config.node_hostname,
            ServerVersion=__version__,
            OperatingSystem=_os_name(),
            KernelVersion=platform.release(),
            NCPU=host.cpu_count(),
            MemTotal=host.memory_bytes(),
            DockerRootDir=str(self.config.state_dir),
            Swarm=swarm_info(swarm),
            Plugins={"Network": ["overlay", "bridge", "macvlan", "null", "host"]},
            RegistryConfig=registry_config(self.config),
        )
        return json_model(body)


def registry_config(config: DaemonConfig) -> dict[str, Any]:
    """``/info``'s ``RegistryConfig`` in Docker's shape, from daemon.json's
    ``registry-mirrors`` and ``insecure-registries``."""
    mirrors = list(config.registry_mirrors)
    indexes: dict[str, Any] = {
        "docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}
    }
    for registry in config.insecure_registries:
        indexes[registry] = {"Name": registry, "Mirrors": [], "Secure": False, "Official": False}
    return {
        "AllowNondistributableArtifactsCIDRs": None,
        "AllowNondistributableArtifactsHostnames": None,
        "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        "IndexConfigs": indexes,
        "Mirrors": mirrors,
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except FileNotFoundError:
        pass
    return "Linux"
