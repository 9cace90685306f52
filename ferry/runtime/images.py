"""Images: root filesystems imported from tarballs.

An imported image is a directory tree that containers see through an overlay mount (image
below, a private writable layer above), so any number of containers share one copy. There is
no image of the host's own files: a container never runs on them. ``ferry image import``
takes a plain root filesystem tarball, the output of ``docker export``, or the output of
``docker save`` (layers applied in order, whiteouts honoured).

Be aware: there is no registry client; ``nginx`` or ``alpine`` exist only once imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ferry.daemon.files import write_json
from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.model.times import now_iso

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?$")


@dataclass(frozen=True)
class Image:
    name: str  # repository:tag
    image_id: str
    created_at: str
    size_bytes: int
    rootfs: Path


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
    return name.replace("/", "_").replace(":", "@")


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

    def import_tar(self, tar_path: Path, name: str) -> Image:
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
            _extract_image(tar_path, rootfs)
            size = sum(p.lstat().st_size for p in rootfs.rglob("*"))
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
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(full)

    def remove(self, name: str, in_use_by: list[str]) -> Image:
        image = self.get(name)
        if in_use_by:
            raise Conflict(
                f"image {image.name} is used by container(s) {', '.join(in_use_by)}: "
                "remove them first"
            )
        shutil.rmtree(image.rootfs.parent)
        return image


def _untar(archive: Path, target: Path) -> None:
    result = subprocess.run(
        ["tar", "-xpf", str(archive), "-C", str(target), "--numeric-owner"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InvalidArgument(f"cannot extract {archive.name}: {result.stderr.strip()}")


def _extract_image(tar_path: Path, rootfs: Path) -> None:
    try:
        with tarfile.open(tar_path) as archive:
            names = set(archive.getnames())
            manifest = archive.extractfile("manifest.json") if "manifest.json" in names else None
            layers = json.loads(manifest.read())[0]["Layers"] if manifest else None
    except (tarfile.TarError, ValueError, KeyError, IndexError) as exc:
        raise InvalidArgument(f"{tar_path.name} is not an image tarball: {exc}") from exc
    if layers is None:  # a root filesystem (plain or `docker export`)
        _untar(tar_path, rootfs)
        return
    with tempfile.TemporaryDirectory(dir=rootfs.parent) as unpacked:
        _untar(tar_path, Path(unpacked))
        for layer in layers:
            _apply_layer(_within(Path(unpacked).resolve(), Path(layer), tar_path), rootfs)


def _within(root: Path, relative: Path, source: Path) -> Path:
    """``root / relative``, refused if it leaves ``root``: by an absolute name, by '..', or
    through a symlink an earlier layer planted (a whiteout must never delete a host file)."""
    if relative.is_absolute() or ".." in relative.parts:
        raise InvalidArgument(f"{source.name}: refusing the path {str(relative)!r}")
    resolved = (root / relative).resolve()
    if resolved != root and root not in resolved.parents:
        raise InvalidArgument(f"{source.name}: {str(relative)!r} points outside the image")
    return resolved


def _apply_layer(layer: Path, rootfs: Path) -> None:
    """Apply one `docker save` layer: first its whiteouts (what it deletes from the layers
    below), then its files."""
    with tarfile.open(layer) as archive:
        names = archive.getnames()
    root = rootfs.resolve()
    for member in names:
        path = Path(member)
        if not path.name.startswith(".wh."):
            continue
        parent = _within(root, path.parent, layer)
        if path.name == ".wh..wh..opq":  # opaque directory: hide everything below it
            targets = list(parent.iterdir()) if parent.is_dir() else []
        else:
            targets = [parent / path.name[len(".wh.") :]]
        for target in targets:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    result = subprocess.run(
        ["tar", "-xpf", str(layer), "-C", str(rootfs), "--numeric-owner", "--exclude=.wh.*"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InvalidArgument(f"cannot extract layer {layer.name}: {result.stderr.strip()}")
