"""/volumes: named volumes of the ``local`` driver, in Docker's shapes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferry.agent.containers import ContainerService
from ferry.api import list_filters as lf
from ferry.api import params
from ferry.api.body import SMALL_BODY_BYTES, read_model
from ferry.api.models.base import DockerModel
from ferry.api.server import add_route
from ferry.model.filters import flag
from ferry.model.filters import matches as filters_match
from ferry.runtime.volumes import DRIVER, Volume, VolumeStore


class VolumeCreate(DockerModel):
    Name: str = ""
    Driver: str = DRIVER
    DriverOpts: dict[str, str] | None = None
    Labels: dict[str, str] | None = None


def volume_json(volume: Volume) -> dict[str, Any]:
    return {
        "Name": volume.name,
        "Driver": DRIVER,
        "Mountpoint": str(volume.mountpoint),
        "CreatedAt": volume.created_at,
        "Labels": volume.labels or None,
        "Scope": "local",
        "Options": None,
    }


class VolumeRoutes:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.volumes: VolumeStore = containers.runner.volumes

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/volumes", self.list)
        add_route(app, "POST", "/volumes/create", self.create)
        add_route(app, "POST", "/volumes/prune", self.prune)
        add_route(app, "GET", "/volumes/{name}", self.inspect)
        add_route(app, "DELETE", "/volumes/{name}", self.remove)

    async def list(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, lf.VOLUME_FILTERS)
        flag(filters, "dangling")
        used = self.containers.volumes_in_use()
        out = []
        for volume in self.volumes.all():
            rules = lf.volume_rules(volume.name, DRIVER, volume.labels, volume.name in used)
            if not filters_match(filters, rules):
                continue
            out.append(volume_json(volume))
        return web.json_response({"Volumes": out, "Warnings": []})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_model(request, VolumeCreate, SMALL_BODY_BYTES)
        volume = self.volumes.create(body.Name, body.Labels, body.Driver, body.DriverOpts)
        self.containers.events.publish("volume", "create", volume.name, {"driver": DRIVER})
        return web.json_response(volume_json(volume), status=201)

    async def inspect(self, request: web.Request) -> web.Response:
        return web.json_response(volume_json(self.volumes.get(request.match_info["name"])))

    async def remove(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        users = self.containers.volumes_in_use().get(name, [])
        self.volumes.remove(name, users, force=params.boolean(request.query, "force"))
        self.containers.events.publish("volume", "destroy", name, {"driver": DRIVER})
        return web.Response(status=204)

    async def prune(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, lf.VOLUME_PRUNE_FILTERS)
        every = flag(filters, "all") or False
        keep = set(self.containers.volumes_in_use())
        for volume in self.volumes.all():  # what the label filters leave out is kept
            labels = {k: v for k, v in filters.items() if k != "all"}
            rules = lf.prune_rules(volume.labels, 0.0, lambda _: 0.0)
            if not filters_match(labels, rules):
                keep.add(volume.name)
        removed, freed = self.volumes.prune(keep, every)
        for name in removed:
            self.containers.events.publish("volume", "destroy", name, {"driver": DRIVER})
        return web.json_response({"VolumesDeleted": removed, "SpaceReclaimed": freed})
