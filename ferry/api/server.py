"""The HTTP plumbing shared by ferryd's local API: routing, versions, errors, Docker's headers.

Docker clients prefix paths with the API version they negotiated (``/v1.47/containers/json``);
``add_route`` registers each route with and without that prefix, so each is written once, and
``version_middleware`` refuses a version outside MIN_API_VERSION..API_VERSION as Docker does
(moby ``api/server/middleware/version.go``). Errors leave as Docker does: ``{"message": "..."}``
with the status of the error kind, which the docker CLI prints as "Error response from daemon:
...". Request bodies are read by ``ferry.api.body`` and query parameters parsed by
``ferry.api.params``; nothing else reads them.
"""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import BaseModel

from ferry import API_VERSION, MIN_API_VERSION, __version__
from ferry.api.body import SPEC_BODY_BYTES
from ferry.errors import InvalidArgument
from ferry.weberrors import Handler, client_gone_middleware, errors_middleware

# Any first segment starting with "v" and another after it: a malformed version is refused
# with a 400 that says so, not a 404.
_VERSIONED = "/v{api_version:[^/]+}"
_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


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


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def check_api_version(version: str) -> None:
    """Docker's rule and words: a version above API_VERSION or below MIN_API_VERSION is refused
    (400); so is one that is not a version at all."""
    if not _VERSION_RE.match(version):
        raise InvalidArgument(
            f"invalid API version {version!r} in the path: use /v{API_VERSION}/ (or any version "
            f"from {MIN_API_VERSION}), or no version prefix"
        )
    wanted = _version_tuple(version)
    if wanted > _version_tuple(API_VERSION):
        raise InvalidArgument(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if wanted < _version_tuple(MIN_API_VERSION):
        raise InvalidArgument(
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )


@web.middleware
async def version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    version = request.match_info.get("api_version")
    if version is not None:
        check_api_version(version)
    return await handler(request)


# What aiohttp's parser takes per request line and header line (its default is 8 KiB); Docker's
# clients put every filter in the query, and Go's server takes up to 1 MiB of headers.
HTTP_LINE_BYTES = 64 * 1024


def make_app() -> web.Application:
    # client_max_size bounds what aiohttp itself would buffer; JSON bodies are read by
    # ferry.api.body with per-route limits, image uploads stream to disk past it.
    return web.Application(
        middlewares=[
            client_gone_middleware,
            headers_middleware,
            errors_middleware,
            version_middleware,
        ],
        client_max_size=SPEC_BODY_BYTES,
    )


def json_model(model: BaseModel | list[BaseModel], status: int = 200) -> web.Response:
    # Docker's optional fields are omitempty pointers: a worker has no "ManagerStatus" key at
    # all, and clients written against Docker test for the key, not for null
    if isinstance(model, list):
        body = "[" + ",".join(m.model_dump_json(by_alias=True, exclude_none=True) for m in model)
        body += "]"
    else:
        body = model.model_dump_json(by_alias=True, exclude_none=True)
    return web.Response(text=body, status=status, content_type="application/json")
