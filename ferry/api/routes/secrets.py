"""/secrets and /configs in Docker's shapes (Engine API v1.47: SecretSpec, Secret, ConfigSpec,
Config). A secret's data is never shown; a config's is, in base64, as Docker shows it."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from ferry.api import params
from ferry.api.body import read_model
from ferry.api.run_options import refused
from ferry.api.server import add_route
from ferry.daemon.swarm import SwarmController
from ferry.errors import InvalidArgument
from ferry.manager.secrets import ObjectOps
from ferry.model.filters import matches
from ferry.model.swarm_objects import (
    LIST_FILTERS,
    Kind,
    SwarmObject,
    check_unhonoured,
    list_rules,
)


class ObjectSpecModel(BaseModel):
    """Docker's SecretSpec and ConfigSpec (a config has no Driver): fields not declared here
    are kept, to be refused by name."""

    model_config = ConfigDict(extra="allow")
    Name: str = ""
    Labels: dict[str, str] | None = None
    Data: str | None = None
    Driver: dict[str, Any] | None = None
    Templating: dict[str, Any] | None = None


def _data(model: ObjectSpecModel) -> bytes | None:
    """``Data`` decoded (standard base64, as Go's []byte in JSON); None when not given."""
    if model.Data is None:
        return None
    try:
        return base64.b64decode(model.Data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument("invalid Data: give the data in standard base64") from exc


def _check(model: ObjectSpecModel) -> None:
    names = refused(model, "")
    if names:
        raise InvalidArgument(f"Ferry does not support {', '.join(sorted(names))}")
    check_unhonoured(model.model_dump())


class SwarmObjectRoutes:
    """The routes of one kind: ``/secrets`` or ``/configs``."""

    def __init__(self, kind: Kind, swarm: SwarmController) -> None:
        self.kind = kind
        self.swarm = swarm
        # Be aware: the changes made through this manager's API, not through another's
        self._path = f"/{kind.value}s"

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", self._path, self.list)
        add_route(app, "POST", f"{self._path}/create", self.create)
        add_route(app, "GET", f"{self._path}/{{id}}", self.inspect)
        add_route(app, "POST", f"{self._path}/{{id}}/update", self.update)
        add_route(app, "DELETE", f"{self._path}/{{id}}", self.remove)

    def _ops(self) -> ObjectOps:
        manager = self.swarm.require_manager()
        return manager.swarm_secrets if self.kind == Kind.SECRET else manager.configs

    def _render(self, ops: ObjectOps, obj: SwarmObject) -> dict[str, Any]:
        spec: dict[str, Any] = {"Name": obj.name, "Labels": obj.labels}
        if self.kind == Kind.CONFIG:
            spec["Data"] = obj.data  # kept in base64: Docker shows a config's data
        return {
            "ID": obj.obj_id,
            "Version": {"Index": ops.version(obj)},
            "CreatedAt": obj.created_at,
            "UpdatedAt": obj.updated_at,
            "Spec": spec,
        }

    async def list(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, LIST_FILTERS)
        ops = self._ops()
        found = [o for o in ops.all() if matches(filters, list_rules(o))]
        return web.json_response([self._render(ops, o) for o in found])

    async def create(self, request: web.Request) -> web.Response:
        model = await read_model(request, ObjectSpecModel)
        _check(model)
        data = _data(model) or b""
        obj = await self._ops().create(model.Name, data, model.Labels or {})
        return web.json_response({"ID": obj.obj_id}, status=201)

    async def inspect(self, request: web.Request) -> web.Response:
        ops = self._ops()
        return web.json_response(self._render(ops, ops.find(request.match_info["id"])))

    async def update(self, request: web.Request) -> web.Response:
        version = params.object_version(request.query, self.kind.value)
        model = await read_model(request, ObjectSpecModel)
        _check(model)
        ops = self._ops()
        await ops.update(
            request.match_info["id"], version, model.Name, _data(model), model.Labels or {}
        )
        return web.Response(status=200)

    async def remove(self, request: web.Request) -> web.Response:
        await self._ops().remove(request.match_info["id"])
        return web.Response(status=204)
