"""Images: root filesystems imported from tarballs.

An imported image is a directory tree that containers see through an overlay mount (image
below, a private writable layer above), so any number of containers share one copy. There is
no image of the host's own files: a container never runs on them. ``ferry image import`` takes
a plain root filesystem tarball, the output of ``docker export``, or the output of ``docker
save`` (layers applied in the manifest's order, whiteouts honoured), compressed or not. Every
archive is unpacked by ``ferry.runtime.archive``, which never creates, changes or removes
anything outside the image's root.

Be aware: there is no registry client; ``nginx`` or ``alpine`` exist only once imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.daemon.files import write_json
from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.kernel.inroot import Root, clean, remove_tree
from ferry.model.times import now_iso
from ferry.runtime.archive import extract_layer

# Docker's limits (distribution/reference): a repository of at most 255 characters, a tag of
# at most 128 that starts with a word character.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,254}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")
NAME_MAX_BYTES = 255  # of one file name (NAME_MAX)


@dataclass(frozen=True)
class Image:
    name: str  # repository:tag
    image_id: str
    created_at: str
    size_bytes: int
    rootfs: Path
    # the image config's ``config`` object (Docker's image-inspect ``Config``); {} for none
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry (Docker's AuthConfig). Placeholder of the contract until
    the STORE branch (which decodes it from ``X-Registry-Auth``) is merged."""

    username: str
    password: str
    serveraddress: str = ""


async def resolve_digest(ref: str, auth: RegistryAuth | None) -> str | None:
    """The manifest digest of ``ref`` in its registry (``sha256:…``), or None when the
    registry cannot be reached. Placeholder of the contract: this branch has no registry
    client, so the registry is never reached (the STORE branch replaces it)."""
    del ref, auth
    return None


def normalise(name: str) -> str:
    """Docker's reference rules, locally: ``alpine`` means ``alpine:latest``, and the default
    registry's prefix (``docker.io/library/``) is dropped."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if not NAME_RE.match(name):
        raise InvalidArgument(f"invalid image name {name!r}: use NAME or NAME:TAG in lower case")
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _dirname(name: str) -> str:
    """The image's directory under the store: one file name, whatever the image's name (NAME_RE
    leaves no '/' and no leading '.' after this), shortened with a digest past NAME_MAX."""
    flat = name.replace("/", "_").replace(":", "@")
    if len(flat) > NAME_MAX_BYTES:
        flat = flat[:190] + "-" + hashlib.sha256(flat.encode()).hexdigest()[:32]
    return flat


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, name: str) -> Image:
        full = normalise(name)
        meta = self.root / _dirname(full) / "image.json"
        if not meta.exists():
            raise NotFound(
                f"No such image: {name}. Ferry has no registry: import a root filesystem with "
                f"'ferry image import FILE.tar {name}'"
            )
        record = json.loads(meta.read_text())
        return Image(full, record["id"], record["created"], record["size"], meta.parent / "rootfs")

    def all(self) -> list[Image]:
        images = []
        if self.root.is_dir():
            for meta in sorted(self.root.glob("*/image.json")):
                record = json.loads(meta.read_text())
                images.append(self.get(record["name"]))
        return images

    def import_tar(self, tar_path: Path, name: str, source: str = "") -> Image:
        """Import a tarball as image ``name``; ``source`` names it in errors (default: the
        file's name). Raises ``InvalidArgument`` naming the entry an archive may not have."""
        full = normalise(name)
        if not tar_path.is_file():
            raise NotFound(f"no such file: {tar_path}")
        digest = hashlib.sha256()
        with open(tar_path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".import-", dir=self.root))
        try:
            rootfs = staging / "rootfs"
            rootfs.mkdir()
            size = _extract_image(tar_path, rootfs, source or tar_path.name)
            write_json(
                staging / "image.json",
                {
                    "name": full,
                    "id": "sha256:" + digest.hexdigest(),
                    "created": now_iso(),
                    "size": size,
                },
            )
            target = self.root / _dirname(full)
            if target.exists():
                remove_tree(target)
            os.replace(staging, target)
        finally:
            with contextlib.suppress(OSError):  # after a failure: keep the first error
                remove_tree(staging)
        return self.get(full)

    def remove(self, name: str, in_use_by: list[str]) -> Image:
        image = self.get(name)
        if in_use_by:
            raise Conflict(
                f"image {image.name} is used by container(s) {', '.join(in_use_by)}: "
                "remove them first"
            )
        remove_tree(image.rootfs.parent)
        return image


MANIFEST_MAX_BYTES = 1 << 20
# what indexing a damaged or unusual (zstd) archive raises, from tarfile and its decompressors
_UNREADABLE = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def _extract_image(tar_path: Path, rootfs: Path, source: str) -> int:
    """A root filesystem tarball is one layer; a ``docker save`` archive (it has a
    ``manifest.json``) is its layers, applied in the manifest's order, each read in place from
    the archive (nothing of it is unpacked besides the layers' contents). Returns the image's
    size as Docker counts it: the sum of its layers' contents, in bytes."""
    with Root(rootfs) as root, contextlib.ExitStack() as stack:
        try:
            outer: tarfile.TarFile | None = stack.enter_context(tarfile.open(tar_path))
            layers = _saved_layers(outer, source) if outer else None
        except _UNREADABLE:
            outer = layers = None  # not a tar we can index: read as one layer, which says why
        if outer is None or layers is None:  # a root filesystem (plain or `docker export`)
            with open(tar_path, "rb") as stream:
                return extract_layer(stream, root, source).size_bytes
        size = 0
        for number, member in enumerate(layers, 1):
            layer = outer.extractfile(member)
            if layer is None:
                raise InvalidArgument(f"{source}: layer {member.name} is not a file")
            with layer:
                label = f"{source}, layer {number} of {len(layers)} ({member.name})"
                size += extract_layer(layer, root, label).size_bytes
        return size


def _saved_layers(outer: tarfile.TarFile, source: str) -> list[tarfile.TarInfo] | None:
    """The layers a ``docker save`` manifest lists, in order, as members of the archive; None
    when there is no manifest. Layer paths are names inside the archive, nothing else: an
    absolute path, ``..``, a name that is not a file of the archive are refused."""
    try:
        found = outer.getmember("manifest.json")
    except KeyError:
        return None
    if not found.isfile() or found.size > MANIFEST_MAX_BYTES:
        raise InvalidArgument(f"{source}: manifest.json is not a small regular file")
    data = outer.extractfile(found)
    try:
        manifest = json.loads(data.read() if data else b"")
        if not isinstance(manifest, list) or len(manifest) != 1:
            raise InvalidArgument(
                f"{source}: the archive holds {len(manifest) if isinstance(manifest, list) else 0}"
                " images; import one image per archive (docker save IMAGE)"
            )
        names = manifest[0]["Layers"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgument(f"{source}: manifest.json is not a docker save manifest") from exc
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidArgument(f"{source}: manifest.json's Layers is not a list of paths")
    members = []
    for name in names:
        if clean(name) != name or not name:
            raise InvalidArgument(f"{source}: refusing the layer path {name!r}")
        try:
            members.append(outer.getmember(name))
        except KeyError as exc:
            raise InvalidArgument(f"{source}: layer {name} is not in the archive") from exc
    return members
