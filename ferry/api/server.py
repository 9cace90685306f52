"""The HTTP plumbing shared by ferryd's local API: routing, errors, Docker's headers.

Docker clients prefix paths with the API version they negotiated (``/v1.47/containers/json``);
``add_route`` registers each route with and without that prefix, so each is written once.
Errors leave as Docker does: ``{"message": "..."}`` with the status of the error kind, which
the docker CLI prints as "Error response from daemon: ...".
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from ferry import API_VERSION, __version__
from ferry.errors import InvalidArgument
from ferry.weberrors import Handler, errors_middleware

_VERSIONED = "/{api_version:v[0-9]+\\.[0-9]+}"


def add_route(
    app: web.Application, method: str, path: str, handler: Handler, *, allow_head: bool = False
) -> None:
    """Register ``path`` both plain and behind Docker's version prefix (``/v1.47/...``)."""
    for prefix in ("", _VERSIONED):
        if method == "GET":
            app.router.add_get(prefix + path, handler, allow_head=allow_head)
        else:
            app.router.add_route(method, prefix + path, handler)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers["Api-Version"] = API_VERSION
        response.headers["Server"] = f"Ferry/{__version__} (linux)"
        response.headers["Ostype"] = "linux"
        response.headers["Docker-Experimental"] = "false"
    return response


def make_app() -> web.Application:
    return web.Application(
        middlewares=[headers_middleware, errors_middleware],
        client_max_size=1024**3,
    )


async def read_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON in request body: {exc}") from exc


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


def query_filters(request: web.Request) -> dict[str, list[str]]:
    """Docker's ``filters`` query: {"name": {"x": true}} or {"name": ["x"]} → {"name": ["x"]}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid filters: {exc}") from exc
    out: dict[str, list[str]] = {}
    for key, value in parsed.items():
        out[key] = list(value.keys()) if isinstance(value, dict) else list(value)
    return out


def json_model(model: BaseModel | list[BaseModel], status: int = 200) -> web.Response:
    # Docker's optional fields are omitempty pointers: a worker has no "ManagerStatus" key at
    # all, and clients written against Docker test for the key, not for null
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json(by_alias=True, exclude_none=True) for m in model)
        body += "]"
    else:
        body = model.model_dump_json(by_alias=True, exclude_none=True)
    return web.Response(text=body, status=status, content_type="application/json")
