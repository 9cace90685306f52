"""ferryd's whole local API in-process, without root and without a kernel: every route class
registered as ferryd registers them, over services that keep their state in a temporary
directory. Requests that are refused never reach anything that needs privileges; the ones
that succeed here (creating a stopped container, listing) only write files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ferry.agent.container_verbs import ContainerVerbs
from ferry.agent.containers import ContainerService
from ferry.agent.local_networks import LocalNetworks
from ferry.api.routes.container_verbs import ContainerVerbRoutes
from ferry.api.routes.containers import ContainerRoutes
from ferry.api.routes.events import EventRoutes
from ferry.api.routes.images import ImageRoutes
from ferry.api.routes.networks import NetworkRoutes
from ferry.api.routes.secrets import SwarmObjectRoutes
from ferry.api.routes.services import ServiceRoutes
from ferry.api.routes.swarm import SwarmRoutes
from ferry.api.routes.system import SystemRoutes
from ferry.api.routes.system_df import DiskUsageRoutes
from ferry.api.routes.volumes import VolumeRoutes
from ferry.api.server import make_app
from ferry.daemon.config import DaemonConfig
from ferry.daemon.swarm import SwarmController
from ferry.kernel.thread import KernelThread
from ferry.model.swarm_objects import Kind
from ferry.runtime.execs import ExecService
from ferry.runtime.images import Image, ImageStore
from ferry.runtime.runner import make_runner
from ferry.runtime.store import ContainerStore
from tests.unit.conftest import put_image

Client = TestClient[object, object]
# the rig's container service, for tests that reach behind the API (e.g. to make a start fail)
CONTAINERS = web.AppKey("containers", ContainerService)


async def _never(*_args: object) -> NoReturn:
    raise AssertionError("a hostile request reached the swarm controller")


class ConfiguredImages(ImageStore):
    """An image store whose every image carries ``config`` (Docker's image ``Config``), as a
    pulled image or one imported with ``-c`` does."""

    def __init__(self, root: Path, config: Mapping[str, Any]) -> None:
        super().__init__(root)
        self.config = config

    def get(self, name: str) -> Image:
        return replace(super().get(name), config=self.config)


@asynccontextmanager
async def api_client(
    tmp_path: Path, image_config: Mapping[str, Any] | None = None
) -> AsyncIterator[Client]:
    config = DaemonConfig(state_dir=tmp_path / "state", run_dir=tmp_path / "run", hostname="hx")
    kernel = KernelThread()
    put_image(config.images_dir)
    swarm = SwarmController(config, kernel)
    # A request the routes wrongly let through must fail here, not start etcd on this machine.
    swarm.init = swarm.join = swarm.leave = _never  # type: ignore[method-assign,assignment]
    local = LocalNetworks(
        kernel, tmp_path / "networks", list, lambda _net_id: [], egress_path=config.egress_path
    )
    containers = ContainerService(
        netns_prefix="unit-",
        kernel=kernel,
        images=(
            ImageStore(config.images_dir)
            if image_config is None
            else ConfiguredImages(config.images_dir, image_config)
        ),
        store=ContainerStore(tmp_path / "containers"),
        runner=make_runner(config),
        networks=lambda: None,
        dns=None,
        on_change=lambda: None,
        local=local,
    )
    app = make_app()
    app[CONTAINERS] = containers
    SystemRoutes(config, swarm, dict).register(app)
    SwarmRoutes(swarm).register(app)
    NetworkRoutes(swarm, containers, local).register(app)
    ContainerRoutes(containers, ExecService(containers.runner)).register(app)
    images = ImageRoutes(containers)
    images.register(app)
    images.transfer.register(app)
    ServiceRoutes(swarm).register(app)
    for kind in (Kind.SECRET, Kind.CONFIG):
        SwarmObjectRoutes(kind, swarm).register(app)
    VolumeRoutes(containers).register(app)
    EventRoutes(containers.events).register(app)
    DiskUsageRoutes(containers).register(app)
    ContainerVerbRoutes(ContainerVerbs(containers)).register(app)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        kernel.shutdown()
