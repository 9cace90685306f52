"""/system/df (``docker system df [-v]``): disk usage of images, containers and volumes in
Docker's ``DiskUsage`` shape (moby ``daemon/disk_usage.go``).

Sizes come from Ferry's own stores: an image is its layers (each unpacked once in the layer
store, so ``LayersSize`` counts a shared layer once and ``SharedSize`` is what an image shares
with another), a container's ``SizeRw`` is its writable (upper) directory, a volume's
``UsageData.Size`` the bytes under its mountpoint. ``type`` (API 1.42) limits the answer to
some of the sections. Be aware: sizes are measured by walking directories on each call, as
Docker does for containers and volumes.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

from aiohttp import web

from ferry.agent.containers import ContainerService
from ferry.api import render
from ferry.api.routes.images import summary as image_summary
from ferry.api.routes.volumes import volume_json
from ferry.api.server import add_route
from ferry.errors import InvalidArgument
from ferry.runtime.images import Image

DF_TYPES = ("container", "image", "volume", "build-cache")


def tree_bytes(root: Path) -> int:
    """The bytes of the regular files under ``root`` (0 when it does not exist)."""
    if not root.is_dir():
        return 0
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def image_usage(images: list[Image], users: dict[str, int]) -> tuple[int, list[dict[str, Any]]]:
    """``LayersSize`` (each layer once) and the images with ``SharedSize`` (the bytes of their
    layers another image has too) and ``Containers`` (``users``: containers per image id)."""
    holders: collections.Counter[Path] = collections.Counter()
    sizes: dict[Path, int] = {}
    for image in images:
        for path, size in set(zip(image.layers, image.layer_sizes, strict=False)):
            holders[path] += 1
            sizes[path] = size
    out = []
    for image in images:
        shared = sum(
            size for path, size in sizes.items() if path in image.layers and holders[path] > 1
        )
        out.append(
            image_summary(image)
            | {"SharedSize": shared, "Containers": users.get(image.image_id, 0)}
        )
    return sum(sizes.values()), out


class DiskUsageRoutes:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/system/df", self.disk_usage)

    async def disk_usage(self, request: web.Request) -> web.Response:
        wanted = request.query.getall("type", []) or list(DF_TYPES)
        for kind in wanted:
            if kind not in DF_TYPES:
                raise InvalidArgument(f"unknown object type {kind!r}: use {', '.join(DF_TYPES)}")
        return web.json_response(await asyncio.to_thread(self._usage, set(wanted)))

    def _usage(self, wanted: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        containers = self.containers.all()
        users = collections.Counter(c.config.image_id for c in containers)
        images = {i.image_id: i for i in self.containers.images.all()}
        if "image" in wanted:
            out["LayersSize"], out["Images"] = image_usage(list(images.values()), users)
        if "container" in wanted:
            out["Containers"] = []
            for container in containers:
                config = container.config
                image = self.containers.listed_image(config)
                size_rw = tree_bytes(self.containers.store.dir(config.container_id) / "upper")
                base = images[config.image_id].size_bytes if config.image_id in images else 0
                doc = render.container_summary(container, self.containers.network_ref, image)
                out["Containers"].append(doc | {"SizeRw": size_rw, "SizeRootFs": size_rw + base})
        if "volume" in wanted:
            used = self.containers.volumes_in_use()
            out["Volumes"] = [
                volume_json(v)
                | {
                    "UsageData": {
                        "Size": tree_bytes(v.mountpoint),
                        "RefCount": len(used.get(v.name, [])),
                    }
                }
                for v in self.containers.runner.volumes.all()
            ]
        if "build-cache" in wanted:
            out["BuildCache"] = []  # Ferry does not build images
        return out


def _volume_usage(mountpoint: Path, users: list[str]) -> dict[str, int]:
    return {"Size": tree_bytes(mountpoint), "RefCount": len(users)}
