"""A root filesystem tarball turned into an OCI image layout (one layer), written here.

The layout (OCI image-spec v1.0, ``image-layout.md``): ``oci-layout``, ``index.json`` naming
one manifest by its ``org.opencontainers.image.ref.name`` annotation, and ``blobs/sha256/``
holding the gzip layer, the config and the manifest. ``skopeo copy oci:DIR:TAG docker://…``
pushes it unchanged (a gzip layer is sent as it is).

Written by hand rather than by a tool (umoci is in Debian, but unpacks and repacks the whole
tree to change a config) because the whole of it is four JSON documents and a gzip stream, and
the image config must say exactly what the recipe says.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CHUNK_BYTES = 1 << 20
GZIP_LEVEL = 6  # zlib's default: a third of the size of level 1's output costs little more here


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: ``digest`` is ``sha256:<hex>``, ``size`` in bytes."""

    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Layer:
    blob: Descriptor
    diff_id: str  # sha256 of the uncompressed tar (the config's rootfs.diff_ids)


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces: the same document always gives the same digest."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def image_config(
    config: Mapping[str, Any],
    diff_ids: list[str],
    *,
    created: str,
    architecture: str,
    created_by: str,
) -> dict[str, Any]:
    """The image config document (image-spec ``config.md``); ``created`` an RFC 3339 time."""
    return {
        "created": created,
        "architecture": architecture,
        "os": "linux",
        "config": dict(config),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": created, "created_by": created_by}],
    }


def image_manifest(config: Descriptor, layers: list[Descriptor]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.as_json(),
        "layers": [layer.as_json() for layer in layers],
    }


def image_index(manifest: Descriptor, ref_name: str) -> dict[str, Any]:
    entry = {**manifest.as_json(), "annotations": {REF_NAME: ref_name}}
    return {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [entry]}


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":", 1)
    return layout / "blobs" / algorithm / hex_digest


def _write_blob(layout: Path, media_type: str, data: bytes) -> Descriptor:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = _blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Descriptor(media_type, digest, len(data))


class _HashingWriter:
    """A file wrapper that hashes what passes through (the compressed bytes)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def write_layer(layout: Path, tar_path: Path) -> Layer:
    """Compress ``tar_path`` into a layer blob of ``layout``, hashing it both ways in one
    pass (the gzip header carries no time or name, so the same tar gives the same blob)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / "layer.partial"
    diff = hashlib.sha256()
    with partial.open("wb") as raw:
        hashing = _HashingWriter(raw)
        with (
            tar_path.open("rb") as src,
            gzip.GzipFile(
                filename="",
                mode="wb",
                fileobj=hashing,
                compresslevel=GZIP_LEVEL,
                mtime=0,
            ) as gz,
        ):
            while chunk := src.read(CHUNK_BYTES):
                diff.update(chunk)
                gz.write(chunk)
    digest = "sha256:" + hashing.sha.hexdigest()
    os.replace(partial, _blob_path(layout, digest))
    return Layer(Descriptor(MEDIA_LAYER_GZIP, digest, hashing.size), "sha256:" + diff.hexdigest())


def write_layout(
    layout: Path,
    tar_path: Path,
    config: Mapping[str, Any],
    *,
    ref_name: str,
    created: str,
    architecture: str,
    created_by: str,
) -> Descriptor:
    """Write the OCI layout of a one-layer image at ``layout`` (a new or empty directory):
    ``config`` is the image config's ``config`` object; ``ref_name`` the tag ``index.json``
    names it by. Returns the manifest's descriptor (its digest is the image's registry digest).
    """
    layout.mkdir(parents=True, exist_ok=True)
    layer = write_layer(layout, tar_path)
    config_doc = image_config(
        config, [layer.diff_id], created=created, architecture=architecture, created_by=created_by
    )
    config_blob = _write_blob(layout, MEDIA_CONFIG, canonical_json(config_doc))
    manifest = _write_blob(
        layout, MEDIA_MANIFEST, canonical_json(image_manifest(config_blob, [layer.blob]))
    )
    (layout / "index.json").write_bytes(canonical_json(image_index(manifest, ref_name)))
    (layout / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return manifest


def oci_architecture(debian_arch: str) -> str:
    """The OCI/Go name of a Debian architecture (``dpkg --print-architecture``)."""
    names = {"amd64": "amd64", "arm64": "arm64", "armhf": "arm", "i386": "386"}
    return names.get(debian_arch, debian_arch)
