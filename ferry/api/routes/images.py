"""/images: imported root filesystems."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from ferry.agent.containers import ContainerService
from ferry.api import params
from ferry.api.server import add_route
from ferry.errors import InvalidArgument, NotFound
from ferry.model.times import epoch
from ferry.runtime.images import Image, normalise


def _summary(image: Image) -> dict[str, Any]:
    return {
        "Id": image.image_id,
        "RepoTags": [image.name],
        "Created": int(epoch(image.created_at)),
        "Size": image.size_bytes,
        "Labels": {},
        "Containers": -1,
    }


class ImageRoutes:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.images = containers.images

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/images/json", self.list)
        add_route(app, "POST", "/images/create", self.create)
        add_route(app, "GET", "/images/{name:.+}/json", self.inspect)
        add_route(app, "DELETE", "/images/{name:.+}", self.remove)

    async def list(self, request: web.Request) -> web.Response:
        params.boolean(request.query, "all")  # Ferry's images have no intermediate layers
        params.boolean(request.query, "digests")
        params.boolean(request.query, "shared-size")
        if params.filters(request.query, ()):
            raise InvalidArgument("image ls takes no filters in Ferry: leave out --filter")
        return web.json_response([_summary(i) for i in self.images.all()])

    async def inspect(self, request: web.Request) -> web.Response:
        image = self.images.get(request.match_info["name"])
        return web.json_response(
            {**_summary(image), "Os": "linux", "Architecture": "amd64", "RepoDigests": []}
        )

    async def remove(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        params.boolean(request.query, "force")  # an image in use stays refused (Conflict)
        params.boolean(request.query, "noprune")
        image = self.images.get(name)
        users = [c.config.name for c in self.containers.all() if c.config.image == image.name]
        removed = self.images.remove(name, users)
        return web.json_response([{"Untagged": removed.name}, {"Deleted": removed.image_id}])

    async def create(self, request: web.Request) -> web.Response:
        """``docker import`` (fromSrc=- with the tarball as body); there is no registry to pull.
        The name is checked before the upload, which streams to disk (no size limit in memory)."""
        if request.query.get("fromSrc") != "-":
            wanted = request.query.get("fromImage", "")
            raise NotFound(
                f"cannot pull {wanted}: Ferry has no registry. Import a root filesystem with "
                f"'ferry image import FILE.tar {wanted}' (e.g. the output of 'docker export')"
            )
        repo = request.query.get("repo", "")
        if not repo:
            raise InvalidArgument("import needs a name: ferry image import FILE.tar NAME")
        tag = request.query.get("tag", "")
        name = f"{repo}:{tag}" if tag else repo
        normalise(name)
        if request.query.get("changes"):
            raise InvalidArgument("Ferry's images carry no config: leave out --change")
        self.images.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.images.root, suffix=".tar") as upload:
            async for chunk in request.content.iter_chunked(1 << 20):
                upload.write(chunk)
            upload.flush()
            image = await asyncio.to_thread(
                self.images.import_tar, Path(upload.name), name, f"the archive for {name}"
            )
        return web.json_response({"status": image.image_id})
