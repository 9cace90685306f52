"""/containers/{id}/pause|unpause|update|rename|top|stats|changes|export|archive and
/containers/prune, in Docker's shapes."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import replace
from typing import Any

from aiohttp import web
from pydantic import ConfigDict

from ferry.agent.container_verbs import ContainerVerbs
from ferry.api import list_filters as lf
from ferry.api import params
from ferry.api.body import read_model
from ferry.api.models.base import DockerModel
from ferry.api.models.containers import RestartPolicyBody
from ferry.api.run_options import refused
from ferry.api.server import add_route
from ferry.errors import InvalidArgument
from ferry.model.container import Container
from ferry.model.filters import matches as filters_match
from ferry.model.filters import until_s
from ferry.model.runopts import Resources, RestartPolicy, parse_restart
from ferry.model.times import epoch


class ContainerUpdate(DockerModel):
    """Docker's update body: the resources Ferry applies; others are refused by name."""

    model_config = ConfigDict(extra="allow")
    Memory: int | None = None
    MemoryReservation: int | None = None
    NanoCpus: int | None = None
    CpuShares: int | None = None
    CpuPeriod: int | None = None
    CpuQuota: int | None = None
    PidsLimit: int | None = None
    RestartPolicy: RestartPolicyBody | None = None


def _resources(body: ContainerUpdate, now: Resources) -> Resources | None:
    asked = {
        "memory_bytes": body.Memory,
        "memory_reservation_bytes": body.MemoryReservation,
        "nano_cpus": body.NanoCpus,
        "cpu_shares": body.CpuShares,
        "cpu_period_us": body.CpuPeriod,
        "cpu_quota_us": body.CpuQuota,
    }
    given: dict[str, int] = {k: v for k, v in asked.items() if v}  # 0 is "not given" there
    if body.PidsLimit is not None:  # Docker: "0 or -1 for unlimited, or null to not change"
        given["pids_limit"] = body.PidsLimit or -1
    if not given:
        return None
    return replace(now, **given)


class ContainerVerbRoutes:
    def __init__(self, verbs: ContainerVerbs) -> None:
        self.verbs = verbs

    def register(self, app: web.Application) -> None:
        add_route(app, "POST", "/containers/prune", self.prune)
        add_route(app, "POST", "/containers/{id}/pause", self.pause)
        add_route(app, "POST", "/containers/{id}/unpause", self.unpause)
        add_route(app, "POST", "/containers/{id}/update", self.update)
        add_route(app, "POST", "/containers/{id}/rename", self.rename)
        add_route(app, "GET", "/containers/{id}/top", self.top)
        add_route(app, "GET", "/containers/{id}/stats", self.stats)
        add_route(app, "GET", "/containers/{id}/changes", self.changes)
        add_route(app, "GET", "/containers/{id}/export", self.export)
        add_route(app, "HEAD", "/containers/{id}/archive", self.archive_stat)
        add_route(app, "GET", "/containers/{id}/archive", self.archive_get)
        add_route(app, "PUT", "/containers/{id}/archive", self.archive_put)

    async def pause(self, request: web.Request) -> web.Response:
        await self.verbs.pause(request.match_info["id"])
        return web.Response(status=204)

    async def unpause(self, request: web.Request) -> web.Response:
        await self.verbs.unpause(request.match_info["id"])
        return web.Response(status=204)

    async def update(self, request: web.Request) -> web.Response:
        body = await read_model(request, ContainerUpdate)
        names = refused(body, "")
        if names:
            raise InvalidArgument(f"Ferry does not support updating {', '.join(sorted(names))}")
        container = self.verbs.containers.find(request.match_info["id"])
        restart: RestartPolicy | None = None
        if body.RestartPolicy is not None and body.RestartPolicy.Name:
            count = body.RestartPolicy.MaximumRetryCount
            restart = parse_restart(body.RestartPolicy.Name + (f":{count}" if count else ""))
        resources = _resources(body, container.config.resources)
        await self.verbs.update(container.config.container_id, resources, restart)
        return web.json_response({"Warnings": []})

    async def rename(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "")
        if not name:
            raise InvalidArgument("rename needs the new name: ?name=NEW")
        await self.verbs.rename(request.match_info["id"], name)
        return web.Response(status=204)

    async def top(self, request: web.Request) -> web.Response:
        out = await self.verbs.top(request.match_info["id"], request.query.get("ps_args", ""))
        return web.json_response(out)

    async def stats(self, request: web.Request) -> web.StreamResponse:
        stream = params.boolean(request.query, "stream", True)
        stream = stream and not params.boolean(request.query, "one-shot")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            async for sample in self.verbs.stats(request.match_info["id"], stream):
                await response.write(json.dumps(sample).encode() + b"\n")
        return response

    async def changes(self, request: web.Request) -> web.Response:
        return web.json_response(self.verbs.changes(request.match_info["id"]) or None)

    async def export(self, request: web.Request) -> web.StreamResponse:
        chunks = self.verbs.export(request.match_info["id"])
        return await _send_tar(request, chunks)

    async def archive_stat(self, request: web.Request) -> web.Response:
        info = await self.verbs.stat(request.match_info["id"], _path(request))
        return web.Response(status=200, headers=_stat_header(info))

    async def archive_get(self, request: web.Request) -> web.StreamResponse:
        path = _path(request)
        info = await self.verbs.stat(request.match_info["id"], path)
        chunks = self.verbs.archive(request.match_info["id"], path)
        return await _send_tar(request, chunks, _stat_header(info))

    async def archive_put(self, request: web.Request) -> web.Response:
        await self.verbs.extract(
            request.match_info["id"], _path(request), request.content.iter_chunked(1 << 16)
        )
        return web.Response(status=200)

    async def prune(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, lf.CONTAINER_PRUNE_FILTERS)
        for value in filters.get("until", []):
            until_s(value)  # a wrong time is refused before anything is removed

        def chosen(container: Container) -> bool:
            config = container.config
            rules = lf.prune_rules(config.labels, epoch(config.created_at), until_s)
            return filters_match(filters, rules)

        removed, freed = await self.verbs.prune(chosen)
        return web.json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": freed})


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidArgument("path is required: ?path=/IN/THE/CONTAINER")
    return path


def _stat_header(info: dict[str, Any]) -> dict[str, str]:
    encoded = base64.b64encode(json.dumps(info).encode()).decode()
    return {"X-Docker-Container-Path-Stat": encoded}


async def _send_tar(
    request: web.Request, chunks: Any, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar", **(headers or {})})
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):
        async for chunk in chunks:
            await response.write(chunk)
    return response
