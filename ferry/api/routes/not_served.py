"""The paths of Docker's Engine API (v1.47) that Ferry deliberately does not serve, each
answered with Docker's "not implemented" kind (501) and one line naming the feature and what
to do instead, never with a bare "page not found" (issue 12).

A path outside Docker's API still answers Docker's own ``404 page not found``. Be aware: these
routes are registered with the system routes, first of all; a handler added later for one of
these paths must take its row out of ``NOT_SERVED`` (the unit test that walks Docker's API
description checks that every path is served or listed here, and never both).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ferry.api.server import add_route
from ferry.errors import NotServed
from ferry.weberrors import Handler


@dataclass(frozen=True)
class Refusal:
    """``feature``: what Docker calls it; ``instead``: what a Ferry user does."""

    feature: str
    instead: str


_BUILD = Refusal(
    "image builds (docker build)",
    "build the image elsewhere, then 'docker load' or 'docker import' it, or pull it",
)
_PLUGINS = Refusal(
    "plugins",
    "Ferry's drivers are built in (networks: overlay, bridge, macvlan, host, null; volumes: local)",
)
_COMMIT = Refusal(
    "docker commit", "export the container ('docker export') and 'docker import' the archive"
)
_ATTACH_WS = Refusal("attaching over a websocket", "attach over HTTP: POST /containers/{id}/attach")
_CLUSTER_VOLUMES = Refusal(
    "cluster volumes (PUT /volumes/{name})", "Ferry's volumes are local: remove and create again"
)
_TASK_LOGS = Refusal(
    "a task's logs (docker service logs TASK)",
    "read its service's logs (GET /services/{id}/logs), each line names its task",
)

# (method, path as Docker's API description spells it) → what is refused
NOT_SERVED: dict[tuple[str, str], Refusal] = {
    ("POST", "/build"): _BUILD,
    ("POST", "/build/prune"): _BUILD,
    ("POST", "/build/cancel"): _BUILD,
    ("POST", "/session"): _BUILD,
    ("POST", "/grpc"): _BUILD,
    ("POST", "/commit"): _COMMIT,
    ("GET", "/containers/{id}/attach/ws"): _ATTACH_WS,
    ("PUT", "/volumes/{name}"): _CLUSTER_VOLUMES,
    ("GET", "/tasks/{id}/logs"): _TASK_LOGS,
    ("GET", "/plugins"): _PLUGINS,
    ("GET", "/plugins/privileges"): _PLUGINS,
    ("POST", "/plugins/pull"): _PLUGINS,
    ("POST", "/plugins/create"): _PLUGINS,
    ("GET", "/plugins/{name}/json"): _PLUGINS,
    ("DELETE", "/plugins/{name}"): _PLUGINS,
    ("POST", "/plugins/{name}/enable"): _PLUGINS,
    ("POST", "/plugins/{name}/disable"): _PLUGINS,
    ("POST", "/plugins/{name}/upgrade"): _PLUGINS,
    ("POST", "/plugins/{name}/push"): _PLUGINS,
    ("POST", "/plugins/{name}/set"): _PLUGINS,
}


def register_not_served(app: web.Application) -> None:
    """A route per row of ``NOT_SERVED`` that refuses with ``NotServed``."""
    for (method, path), refusal in NOT_SERVED.items():
        add_route(app, method, _aiohttp_path(path), _refuse(method, path, refusal))


def _aiohttp_path(path: str) -> str:
    # Docker's plugin names hold "/" and ":" (vieux/sshfs:latest), as image names do
    return path.replace("{name}", "{name:.+}") if path.startswith("/plugins/") else path


def _refuse(method: str, path: str, refusal: Refusal) -> Handler:
    message = f"Ferry does not implement {refusal.feature} ({method} {path}): {refusal.instead}"

    async def handler(_request: web.Request) -> web.StreamResponse:
        raise NotServed(message)

    return handler
