"""Registry verbs of the API: pull (``POST /images/create?fromImage=``), push, distribution
inspect and ``/auth``, with Docker's JSON progress stream.

The stream starts with the first progress message: a failure before it (no such image, an
unreachable registry) is an ordinary error response with its status, as in Docker, so the
docker CLI prints "Error response from daemon: …"; a failure after it is Docker's error line
(``{"errorDetail": {"message": …}, "error": …}``) at the end of the stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ferry.api import params
from ferry.api.body import SMALL_BODY_BYTES, loads, read_bytes
from ferry.api.server import add_route
from ferry.errors import FerryError, InvalidArgument
from ferry.events import EventBus
from ferry.model.reference import normalise, parse_reference
from ferry.runtime.credentials import RegistryAuth
from ferry.runtime.images import ImageStore
from ferry.runtime.registry import RegistryClient

PLATFORMS = ("", "linux", "linux/amd64")


async def json_lines(request: web.Request, lines: Iterable[dict[str, Any]]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for line in lines:
        await response.write(json.dumps(line).encode() + b"\r\n")
    await response.write_eof()
    return response


class _Progress:
    """Docker's JSON message stream, started by the first message."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.response is None:
            self.response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await self.response.prepare(self.request)
        await self.response.write(json.dumps(message).encode() + b"\r\n")

    async def finish(self, error: FerryError | None) -> web.StreamResponse:
        if error is not None:
            if self.response is None:
                raise error
            text = str(error)
            await self({"errorDetail": {"message": text}, "error": text})
        if self.response is None:
            self.response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await self.response.prepare(self.request)
        await self.response.write_eof()
        return self.response


def request_auth(request: web.Request) -> RegistryAuth | None:
    return RegistryAuth.from_header(request.headers.get("X-Registry-Auth", ""))


class TransferRoutes:
    def __init__(self, images: ImageStore, events: EventBus | None = None) -> None:
        self.images = images
        self.events = events or EventBus()

    @property
    def registry(self) -> RegistryClient:
        if self.images.registry is None:  # pragma: no cover - ferryd always has one
            raise InvalidArgument("this ferryd has no registry client")
        return self.images.registry

    def register(self, app: web.Application) -> None:
        add_route(app, "POST", "/images/{name:.+}/push", self.push)
        add_route(app, "GET", "/distribution/{name:.+}/json", self.distribution)
        add_route(app, "POST", "/auth", self.login)
        add_route(app, "GET", "/images/search", self.search)

    def register_own(self, app: web.Application) -> None:
        """Ferry's own routes, beyond Docker's API (ferryd keeps credentials; Docker's CLI
        keeps them itself, so Docker has no logout call)."""
        add_route(app, "POST", "/auth/logout", self.logout)

    async def pull(self, request: web.Request) -> web.StreamResponse:
        """``fromImage=NAME`` and ``tag=TAG`` (or a digest, as the docker CLI sends one)."""
        name = request.query.get("fromImage", "")
        tag = request.query.get("tag", "")
        platform = request.query.get("platform", "")
        if platform not in PLATFORMS:
            raise InvalidArgument(f"platform {platform!r} is not supported: Ferry runs linux/amd64")
        if not name:
            raise InvalidArgument("fromImage is required: ?fromImage=NAME&tag=TAG")
        if tag:
            name += f"@{tag}" if tag.startswith("sha256:") else f":{tag}"
        elif not (bare := parse_reference(name, default_tag=False)).tag and not bare.digest:
            # Docker pulls every tag of the repository for an empty tag (docker pull -a)
            raise InvalidArgument(f"pulling every tag of {name} is not supported: name a tag")
        parse_reference(name)
        auth = request_auth(request)
        progress = _Progress(request)
        error: FerryError | None = None
        try:
            await self.registry.pull(self.images, name, auth, progress)
        except FerryError as exc:
            error = exc
        else:
            self.events.publish("image", "pull", normalise(name), {"name": normalise(name)})
        return await progress.finish(error)

    async def push(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        tag = request.query.get("tag", "")
        ref = parse_reference(f"{name}:{tag}" if tag else name)
        auth = request_auth(request)  # a malformed header is a 400 whatever else is wrong
        self.images.get(ref.familiar)  # 404 before the stream: "No such image"
        progress = _Progress(request)
        error: FerryError | None = None
        try:
            await self.registry.push(self.images, ref.familiar, auth, progress)
        except FerryError as exc:
            error = exc
        return await progress.finish(error)

    async def distribution(self, request: web.Request) -> web.Response:
        ref = parse_reference(request.match_info["name"])
        auth = request_auth(request)
        info = await self.registry.distribution(ref, auth)
        return web.json_response(info)

    async def search(self, request: web.Request) -> web.Response:
        """``docker search``: Docker asks Docker Hub's index (``/v1/search``), which a
        registry (the lab's, CNCF distribution) does not have and Ferry does not reach:
        refused in one line (400, which the docker CLI prints as its error)."""
        term = request.query.get("term", "")
        raise InvalidArgument(
            f"cannot search for {term!r}: Ferry has no image index to search (docker search "
            "asks Docker Hub's); name the image with its registry and pull it"
        )

    async def login(self, request: web.Request) -> web.Response:
        body = loads(await read_bytes(request, SMALL_BODY_BYTES))
        if not isinstance(body, dict):
            raise InvalidArgument("the body is a JSON object: username, password, serveraddress")
        for key, value in body.items():
            if key not in ("username", "password", "serveraddress", "email", "auth"):
                raise InvalidArgument(f"{key} is not supported in /auth: use username, password")
            if not isinstance(value, str):
                raise InvalidArgument(f"{key} in /auth must be a string")
        if body.get("auth") and not body.get("username"):
            raise InvalidArgument("give username and password (an auth token alone is refused)")
        await self.registry.login(
            str(body.get("username", "")),
            str(body.get("password", "")),
            str(body.get("serveraddress", "")),
        )
        return web.json_response({"Status": "Login Succeeded", "IdentityToken": ""})

    async def logout(self, request: web.Request) -> web.Response:
        """Ferry's own: forget the credentials ``/auth`` kept for a registry."""
        body = loads(await read_bytes(request, SMALL_BODY_BYTES) or b"{}")
        address = str(body.get("serveraddress", "")) if isinstance(body, dict) else ""
        params.boolean(request.query, "quiet")
        await self.registry.logout(address)
        return web.json_response({"Status": "Removed login credentials"})
