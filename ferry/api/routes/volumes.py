"""/volumes: named volumes of the ``local`` driver, in Docker's shapes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferry.agent.containers import ContainerService
from ferry.api import params
from ferry.api.body import SMALL_BODY_BYTES, read_model
from ferry.api.models.base import DockerModel
from ferry.api.server import add_route
from ferry.errors import InvalidArgument
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
        filters = params.filters(request.query, ("name", "dangling", "label"))
        used = self.containers.volumes_in_use()
        out = []
        for volume in self.volumes.all():
            if "name" in filters and not any(n in volume.name for n in filters["name"]):
                continue
            if "dangling" in filters:
                dangling = filters["dangling"][0] in ("true", "1")
                if dangling == (volume.name in used):
                    continue
            if "label" in filters and not all(
                _has_label(volume, label) for label in filters["label"]
            ):
                continue
            out.append(volume_json(volume))
        return web.json_response({"Volumes": out, "Warnings": []})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_model(request, VolumeCreate, SMALL_BODY_BYTES)
        volume = self.volumes.create(body.Name, body.Labels, body.Driver, body.DriverOpts)
        return web.json_response(volume_json(volume), status=201)

    async def inspect(self, request: web.Request) -> web.Response:
        return web.json_response(volume_json(self.volumes.get(request.match_info["name"])))

    async def remove(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        users = self.containers.volumes_in_use().get(name, [])
        self.volumes.remove(name, users, force=params.boolean(request.query, "force"))
        return web.Response(status=204)

    async def prune(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, ("all", "label"))
        if "label" in filters:
            raise InvalidArgument(
                "volume prune by label is not supported: leave out --filter label"
            )
        every = filters.get("all", ["false"])[0] in ("true", "1")
        removed, freed = self.volumes.prune(set(self.containers.volumes_in_use()), every)
        return web.json_response({"VolumesDeleted": removed, "SpaceReclaimed": freed})


def _has_label(volume: Volume, label: str) -> bool:
    key, sep, value = label.partition("=")
    return key in volume.labels and (not sep or volume.labels[key] == value)
