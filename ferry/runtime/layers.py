"""The content-addressed layer store: blobs by digest, layers unpacked once per DiffID.

Layout under the images directory:
- ``blobs/sha256/<hex>``: every blob (configs, manifests, layer tars as a registry serves them,
  compressed or not), named by the sha256 of its bytes. It is also skopeo's shared blob
  directory (``--dest-shared-blob-dir``), so a pull fetches only the blobs not already here
  and a push reads them in place.
- ``layers/<hex of the DiffID>/diff``: the layer unpacked alone (``archive.OVERLAY_LAYER``:
  whiteouts kept as overlayfs marks), one lower directory of every container's overlay mount
  whose image has it. ``layer.json`` beside it records the blob it came from and its size.

A layer is unpacked into a staging directory and renamed into place whole, so a layer
directory is complete or absent; two images that share a layer share its directory.

Be aware: layers are removed only by ``remove_unused``, which the image store calls with the
DiffIDs its images still hold; a container's mount keeps a removed layer's inodes alive.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ferry.daemon.files import read_json, write_json
from ferry.errors import InvalidArgument, NotFound
from ferry.kernel.inroot import remove_tree
from ferry.runtime.archive import OVERLAY_LAYER, extract_layer
from ferry.runtime.manifests import DIGEST_RE

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Layer:
    diff_id: str  # sha256:… of the uncompressed tar
    blob: str  # sha256:… of the blob it was unpacked from (== diff_id for a plain tar)
    media_type: str
    blob_size: int
    size_bytes: int  # its files' contents, as Docker counts a layer's size
    path: Path  # the unpacked directory (an overlay lower directory)


def _hex(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise InvalidArgument(f"not a sha256 digest: {digest!r}")
    return digest.split(":", 1)[1]


class LayerStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self._layers = root / "layers"
        self._lock = threading.Lock()
        self._unpacking: dict[str, threading.Lock] = {}

    # blobs -----------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str, limit_bytes: int = 4 << 20) -> bytes:
        """A small blob (a config, a manifest), checked against its digest."""
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read(limit_bytes + 1)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not in the store") from exc
        if len(data) > limit_bytes:
            raise InvalidArgument(f"blob {digest} is larger than {limit_bytes} bytes")
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise InvalidArgument(f"blob {digest} does not match its digest: pull it again")
        return data

    def put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            self._place(path, lambda fd: os.write(fd, data))
        return digest

    def _place(self, path: Path, fill: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=path.parent)
        try:
            fill(fd)  # type: ignore[operator]
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def put_blob_file(self, source: Path) -> str:
        """Copy a file into the store by its digest (a tar that came in an upload)."""
        digest = hashlib.sha256()
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
                digest.update(chunk)
        name = "sha256:" + digest.hexdigest()
        path = self.blob_path(name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".put-{os.getpid()}-{threading.get_ident()}")
            os.link(source, tmp) if _same_fs(source, path.parent) else _copy(source, tmp)
            os.replace(tmp, path)
        return name

    # layers ----------------------------------------------------------------------------------
    def get(self, diff_id: str) -> Layer:
        directory = self._layers / _hex(diff_id)
        record = read_json(directory / "layer.json")
        if record is None:
            raise NotFound(f"layer {diff_id} is not in the store")
        return Layer(
            diff_id,
            record["blob"],
            record["media_type"],
            record["blob_size"],
            record["size"],
            directory / "diff",
        )

    def has(self, diff_id: str) -> bool:
        return (self._layers / _hex(diff_id) / "layer.json").is_file()

    def ensure(self, blob: str, media_type: str, expect_diff_id: str, source: str) -> Layer:
        """The layer unpacked from blob ``blob`` (already in the store), unless a layer with
        that DiffID is here already. Raises ``InvalidArgument`` when the blob's uncompressed
        digest is not ``expect_diff_id`` (the config and its layers disagree) or the archive
        holds what a layer must not (see ``archive``). Blocking: call from a thread."""
        with self._lock:
            lock = self._unpacking.setdefault(expect_diff_id, threading.Lock())
        with lock:
            if self.has(expect_diff_id):
                return self.get(expect_diff_id)
            return self._unpack(blob, media_type, expect_diff_id, source)

    def _unpack(self, blob: str, media_type: str, diff_id: str, source: str) -> Layer:
        self._layers.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=self._layers))
        try:
            (staging / "diff").mkdir()
            digest = hashlib.sha256()
            with open(self.blob_path(blob), "rb") as stream:
                stats = extract_layer(stream, staging / "diff", source, OVERLAY_LAYER, digest)
            got = "sha256:" + digest.hexdigest()
            if got != diff_id:
                raise InvalidArgument(
                    f"{source}: its content is {got}, the image config says {diff_id}"
                )
            record = {
                "diff_id": diff_id,
                "blob": blob,
                "media_type": media_type,
                "blob_size": self.blob_path(blob).stat().st_size,
                "size": stats.size_bytes,
            }
            write_json(staging / "layer.json", record)
            os.replace(staging, self._layers / _hex(diff_id))
        finally:
            with contextlib.suppress(OSError):  # after a failure: keep the first error
                remove_tree(staging)
        return self.get(diff_id)

    def diff_id_of(self, blob: str) -> str:
        """The sha256 of a blob's uncompressed bytes (for a tar Ferry itself keeps)."""
        from ferry.runtime.compression import decompressed

        digest = hashlib.sha256()
        with open(self.blob_path(blob), "rb") as f, decompressed(f) as plain:
            for chunk in iter(lambda: plain.read(CHUNK_BYTES), b""):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()

    # clean-up --------------------------------------------------------------------------------
    def remove_unused(self, keep_layers: Iterable[str], keep_blobs: Iterable[str]) -> list[str]:
        """Remove layers and blobs no image holds; returns the DiffIDs of removed layers."""
        keep = {_hex(d) for d in keep_layers}
        removed = []
        if self._layers.is_dir():
            for directory in self._layers.iterdir():
                if directory.name.startswith(".") or directory.name in keep:
                    continue
                with self._lock:
                    remove_tree(directory)
                removed.append("sha256:" + directory.name)
        wanted = {_hex(d) for d in keep_blobs}
        blobs = self.blob_dir / "sha256"
        if blobs.is_dir():
            for path in blobs.iterdir():
                if not path.name.startswith(".") and path.name not in wanted:
                    path.unlink(missing_ok=True)
        return removed


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def _copy(source: Path, target: Path) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        for chunk in iter(lambda: src.read(CHUNK_BYTES), b""):
            dst.write(chunk)
