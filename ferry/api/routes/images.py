"""/images: the local image verbs in Docker's shapes (list, inspect, history, tag, remove,
prune, import, save, load). Registry verbs (pull, push, distribution, auth) are
``image_transfer.TransferRoutes``, registered beside these; a pull comes through
``POST /images/create`` here (``fromImage``) and is handed over."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import re
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ferry.agent.containers import ContainerService
from ferry.api import params
from ferry.api.routes.image_transfer import TransferRoutes, json_lines
from ferry.api.server import add_route
from ferry.errors import InvalidArgument, NotFound
from ferry.model.filters import labels as labels_match
from ferry.model.filters import no_labels, until_s
from ferry.model.reference import familiar_match, normalise, parse_reference, path_pattern
from ferry.model.times import epoch
from ferry.runtime import image_archive
from ferry.runtime.images import Image, ImageUser

LIST_FILTERS = ("before", "dangling", "label", "reference", "since")
PRUNE_FILTERS = ("dangling", "label", "label!", "until")
ZERO_TIME = "0001-01-01T00:00:00Z"
# POST /images/create's query (Docker API v1.47): a pull takes the first three, an import the rest
PULL_QUERY = ("fromImage", "tag", "platform")
IMPORT_QUERY = ("fromSrc", "repo", "tag", "message", "changes", "platform")
# Go's GOARCH names (what a platform spells) for what platform.machine() says, and containerd's
# aliases (platforms.Normalize)
GOARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def summary(image: Image, refs: tuple[list[str], list[str]] | None = None) -> dict[str, Any]:
    """Docker's ImageSummary (``GET /images/json``); ``refs``: the tags and digests to list
    when a ``reference`` filter chose some of them (``reference_refs``)."""
    tags, digests = refs or (list(image.repo_tags), list(image.repo_digests))
    return {
        "Id": image.image_id,
        "ParentId": "",
        "RepoTags": tags,
        "RepoDigests": digests,
        "Created": int(epoch(image.created_at)),
        "Size": image.size_bytes,
        "SharedSize": -1,
        "Labels": image.labels,
        "Containers": -1,
    }


def inspect_doc(image: Image) -> dict[str, Any]:
    """Docker's ImageInspect: ``Created`` an RFC 3339 string, ``RootFS.Layers`` the DiffIDs."""
    return {
        "Id": image.image_id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": "",
        "Comment": next((h.get("comment", "") for h in reversed(image.history)), ""),
        "Created": image.created_at or ZERO_TIME,
        "DockerVersion": "",
        "Author": "",
        "Config": dict(image.config),
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size_bytes,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {"LowerDir": ":".join(str(p) for p in reversed(image.layers))},
        },
        "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
        "Metadata": {"LastTagTime": ZERO_TIME},
    }


def history_doc(image: Image) -> list[dict[str, Any]]:
    """Docker's history, newest first: one entry per config history entry; an entry that
    made a layer has that layer's size. The newest has the image's id and tags."""
    sizes = list(image.layer_sizes)
    entries = list(image.history) or [{"created": image.created_at} for _ in image.diff_ids]
    out = []
    for entry in entries:
        empty = bool(entry.get("empty_layer"))
        size = 0 if empty or not sizes else sizes.pop(0)
        out.append(
            {
                "Id": "<missing>",
                "Created": int(epoch(str(entry.get("created") or ""))),
                "CreatedBy": entry.get("created_by", ""),
                "Tags": None,
                "Size": size,
                "Comment": entry.get("comment", ""),
            }
        )
    out.reverse()
    if out:
        out[0]["Id"], out[0]["Tags"] = image.image_id, list(image.repo_tags) or None
    return out


def reference_refs(
    patterns: list[re.Pattern[str]], image: Image
) -> tuple[list[str], list[str]] | None:
    """Docker's ``reference`` filter (daemon/images/images.go): each of the image's tags and
    digests is kept when a pattern matches it (``familiar_match``); the image is listed with
    those only, or not at all when none matches. So ``reference=a`` lists an image tagged
    ``a:1`` and ``b:2`` once, with ``RepoTags: ["a:1"]``."""
    tags = [t for t in image.repo_tags if any(familiar_match(p, t) for p in patterns)]
    digests = [d for d in image.repo_digests if any(familiar_match(p, d) for p in patterns)]
    return (tags, digests) if tags or digests else None


def host_platform(machine: str = "") -> str:
    """This host's platform as Docker spells it (``linux/amd64``): ``machine`` or this one's."""
    arch = machine or platform.machine()
    return f"linux/{GOARCH.get(arch, arch)}"


def check_import_platform(raw: str, machine: str = "") -> None:
    """``platform`` of an import (``docker import --platform``): Docker records the one given
    in the image; Ferry imports for this host only, so ``linux``, ``ARCH`` or ``linux/ARCH``
    (containerd's ``platforms.Parse`` forms, any case, ``x86_64`` for ``amd64``) naming this
    host's platform is taken and any other is refused in one line naming it
    (``InvalidArgument``)."""
    if not raw:
        return
    here = host_platform(machine)
    parts = raw.lower().split("/")
    if len(parts) == 1 and parts[0] != "linux":
        parts = ["linux", *parts]  # containerd: a lone architecture is on this host's OS
    parts[1:2] = [GOARCH.get(p, p) for p in parts[1:2]]
    if "/".join(parts) not in ("linux", here):
        raise InvalidArgument(
            f"platform {raw!r} is not supported: Ferry imports images for this host's "
            f"platform, {here}"
        )


def check_create_query(query: Mapping[str, str]) -> None:
    """Every key of ``POST /images/create``'s query is one Ferry honours for the verb asked:
    a pull's ``repo``, ``message``, ``changes`` or ``fromSrc`` (which Docker drops), or a key
    of no verb, is refused by name (``InvalidArgument``)."""
    pulling = "fromImage" in query
    taken = PULL_QUERY if pulling else IMPORT_QUERY
    for key, value in query.items():
        if key in taken:
            continue
        if key in IMPORT_QUERY and pulling and not value:
            continue  # an empty import parameter on a pull asks nothing
        verb = "a pull (fromImage)" if pulling else "an import (fromSrc)"
        raise InvalidArgument(
            f"{key} is not a parameter of {verb}: POST /images/create takes "
            f"{', '.join(taken)} for it"
        )


def _dangling(values: list[str]) -> bool:
    if any(v not in ("true", "false", "1", "0") for v in values):
        raise InvalidArgument(f"invalid filter 'dangling={values[0]}'")
    return values[-1] in ("true", "1")


class ImageRoutes:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.images = containers.images
        self.events = containers.events
        self.transfer = TransferRoutes(self.images, self.events)

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/images/json", self.list_images)
        add_route(app, "POST", "/images/create", self.create)
        add_route(app, "POST", "/images/prune", self.prune)
        add_route(app, "POST", "/images/load", self.load)
        add_route(app, "GET", "/images/get", self.save)
        add_route(app, "GET", "/images/{name:.+}/json", self.inspect)
        add_route(app, "GET", "/images/{name:.+}/history", self.history)
        add_route(app, "GET", "/images/{name:.+}/get", self.save_one)
        add_route(app, "POST", "/images/{name:.+}/tag", self.tag)
        add_route(app, "DELETE", "/images/{name:.+}", self.remove)

    # reading ---------------------------------------------------------------------------------
    async def list_images(self, request: web.Request) -> web.Response:
        params.boolean(request.query, "all")  # Ferry keeps no intermediate images
        params.boolean(request.query, "digests")
        params.boolean(request.query, "shared-size")
        found = params.filters(request.query, LIST_FILTERS)
        images = self.images.all()
        if "dangling" in found:
            want = _dangling(found["dangling"])
            images = [i for i in images if (not i.repo_tags) == want]
        refs: dict[str, tuple[list[str], list[str]] | None] = {}
        if "reference" in found:
            patterns = [path_pattern(p) for p in found["reference"]]
            refs = {i.image_id: reference_refs(patterns, i) for i in images}
            images = [i for i in images if refs[i.image_id] is not None]
        if "label" in found:
            images = [i for i in images if labels_match(found["label"], i.labels)]
        for key, later in (("before", False), ("since", True)):
            for ref in found.get(key, []):
                pivot = epoch(self.images.get(ref).created_at)
                images = [
                    i
                    for i in images
                    if (epoch(i.created_at) > pivot) == later and epoch(i.created_at) != pivot
                ]
        images.sort(key=lambda i: i.created_at, reverse=True)
        return web.json_response([summary(i, refs.get(i.image_id)) for i in images])

    async def inspect(self, request: web.Request) -> web.Response:
        return web.json_response(inspect_doc(self.images.get(request.match_info["name"])))

    async def history(self, request: web.Request) -> web.Response:
        return web.json_response(history_doc(self.images.get(request.match_info["name"])))

    # changing --------------------------------------------------------------------------------
    async def tag(self, request: web.Request) -> web.Response:
        repo = request.query.get("repo", "")
        if not repo:
            raise InvalidArgument("repository name (repo) is required: ?repo=NAME&tag=TAG")
        tag = request.query.get("tag", "")
        target = f"{repo}:{tag}" if tag else repo
        self.images.tag(request.match_info["name"], target)
        image_id = self.images.lookup(target)
        self.events.publish("image", "tag", image_id, {"name": normalise(target)})
        return web.Response(status=201)

    def _users(self, image_id: str) -> list[ImageUser]:
        """The containers of the image: pinned to its id at create (Docker's ``ImageID``);
        one of an older ferryd by the name it was created from."""
        users = []
        for container in self.containers.all():
            pinned = container.config.image_id
            if not pinned:
                with contextlib.suppress(NotFound, InvalidArgument):
                    pinned = self.images.lookup(container.config.image)
            if pinned == image_id:
                running = container.running or container.state.restarting  # Docker: IsRunning
                users.append(ImageUser(container.config.container_id, running))
        return users

    async def remove(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        force = params.boolean(request.query, "force")
        if params.boolean(request.query, "noprune"):
            raise InvalidArgument("noprune is not supported: Ferry keeps no parent images")
        image_id = self.images.lookup(name)
        out = await asyncio.to_thread(self.images.remove, name, self._users(image_id), force)
        self._removed(image_id, out)
        return web.json_response(out)

    def _removed(self, image_id: str, out: list[dict[str, str]]) -> None:
        """Docker's ``untag`` (one per name) and ``delete`` events of a removal."""
        for item in out:
            if "Untagged" in item:
                self.events.publish("image", "untag", image_id, {"name": item["Untagged"]})
            if "Deleted" in item:
                self.events.publish("image", "delete", item["Deleted"], {"name": item["Deleted"]})

    async def prune(self, request: web.Request) -> web.Response:
        found = params.filters(request.query, PRUNE_FILTERS)
        only_dangling = _dangling(found["dangling"]) if "dangling" in found else True
        until = found.get("until", [])
        deleted: list[dict[str, str]] = []
        freed = 0
        for image in self.images.all():
            if only_dangling and image.repo_tags:
                continue
            if "label" in found and not labels_match(found["label"], image.labels):
                continue
            if not no_labels(found.get("label!", []), image.labels):
                continue
            if until and epoch(image.created_at) >= until_s(until[-1]):
                continue
            if self._users(image.image_id):
                continue
            # by id, forced: every tag, then the image (Docker's prune lists both)
            gone = await asyncio.to_thread(self.images.remove, image.image_id, [], True)
            self._removed(image.image_id, gone)
            deleted += gone
            freed += image.size_bytes
        return web.json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": freed})

    # archives --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _spooled(self, request: web.Request) -> AsyncIterator[Path]:
        """The request body on disk (archives are read by member name)."""
        self.images.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.images.root, prefix=".upload-") as upload:
            async for chunk in request.content.iter_chunked(1 << 20):
                upload.write(chunk)
            upload.flush()
            yield Path(upload.name)

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``docker import`` (``fromSrc=-``, the tarball as body, ``changes`` repeated,
        ``message`` the history comment, ``platform`` this host's) or a pull (``fromImage``,
        see ``image_transfer``). A parameter the verb does not take is refused by name."""
        check_create_query(request.query)
        if "fromImage" in request.query:
            return await self.transfer.pull(request)
        source = request.query.get("fromSrc")
        if source is not None and source != "-":  # docker import URL
            raise InvalidArgument(
                f"importing from a URL is not supported ({source[:100]}): download the "
                "tarball, then import the file (docker import FILE, or - for standard input)"
            )
        if source != "-":
            raise InvalidArgument("give fromImage=NAME (pull) or fromSrc=- (import a tarball)")
        check_import_platform(request.query.get("platform", ""))
        repo = request.query.get("repo", "")
        if not repo:
            raise InvalidArgument("import needs a name: ferry image import FILE.tar NAME")
        tag = request.query.get("tag", "")
        name = normalise(f"{repo}:{tag}" if tag else repo)
        changes = request.query.getall("changes", [])
        message = request.query.get("message", "")
        async with self._spooled(request) as path:
            image_id = await asyncio.to_thread(
                image_archive.import_tar,
                self.images,
                path,
                name,
                f"the archive for {name}",
                changes,
                message=message,
            )
        self.events.publish("image", "import", image_id, {"name": name})
        return web.json_response({"status": image_id})

    async def load(self, request: web.Request) -> web.StreamResponse:
        quiet = params.boolean(request.query, "quiet")
        async with self._spooled(request) as path:
            ids = await asyncio.to_thread(image_archive.load, self.images, path, "the archive")
        lines = []
        for image_id, tags in ids:
            names = [normalise(t) for t in tags] or [image_id]
            for n in names:
                self.events.publish("image", "load", image_id, {"name": n})
            kind = "Loaded image" if tags else "Loaded image ID"
            lines += [{"stream": f"{kind}: {n}\n"} for n in names]
        # Docker prints these whatever ``quiet`` says (it silences only progress bars); the
        # docker CLI sets quiet whenever its output is not a terminal
        del quiet
        return await json_lines(request, lines)

    async def save(self, request: web.Request) -> web.StreamResponse:
        names = request.query.getall("names", [])
        if not names:
            raise InvalidArgument("names is required: ?names=IMAGE (repeat for several)")
        return await self._save(request, names)

    async def save_one(self, request: web.Request) -> web.StreamResponse:
        return await self._save(request, [request.match_info["name"]])

    async def _save(self, request: web.Request, names: list[str]) -> web.StreamResponse:
        for name in names:
            self.images.lookup(name)  # a missing one is a 404 before the stream starts
        with tempfile.TemporaryDirectory(dir=self.images.root, prefix=".save-") as work:
            out = Path(work) / "save.tar"
            await asyncio.to_thread(image_archive.save, self.images, names, out)
            response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
            await response.prepare(request)
            with open(out, "rb") as f:
                while chunk := await asyncio.to_thread(f.read, 1 << 20):
                    await response.write(chunk)
            await response.write_eof()
        return response


__all__ = ["ImageRoutes", "history_doc", "inspect_doc", "parse_reference", "summary"]
