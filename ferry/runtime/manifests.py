"""Image manifests and configs as data: parsed, checked, and made (pure, no I/O).

The shapes are the OCI image spec's (image-manifest.md, image-index.md, config.md) and
Docker's schema 2 (``application/vnd.docker.distribution.manifest.v2+json``), which have the
same fields under other media types. An image is its config (the JSON whose sha256 is the
image id) and its layers, bottom first; each layer is known by its DiffID (the sha256 of its
uncompressed tar) in the config's ``rootfs.diff_ids``, and by its blob digest in a manifest.

``import_config`` makes the config ``docker import`` makes (its ``-c`` lines are
``ferry.model.import_changes``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ferry import jsontext
from ferry.errors import InvalidArgument

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
LAYER_TYPES = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER + "+gzip",
        OCI_LAYER + "+zstd",
        DOCKER_LAYER,
        "application/vnd.docker.image.rootfs.diff.tar",
    }
)
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
# the Config keys Docker keeps (image-inspect's ContainerConfig subset an image carries)
CONFIG_KEYS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Healthcheck",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "ArgsEscaped",
    "OnBuild",
    "Shell",
)


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]


def _descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} is not a descriptor object")
    digest, size, media = value.get("digest"), value.get("size"), value.get("mediaType", "")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise InvalidArgument(f"{what} has no sha256 digest (got {digest!r})")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidArgument(f"{what} has no size")
    if not isinstance(media, str):
        raise InvalidArgument(f"{what} has a mediaType that is not a string")
    return Descriptor(media, digest, size)


def loads_object(data: bytes, what: str) -> dict[str, Any]:
    value = jsontext.loads(data, what)
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} is not a JSON object")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """An image manifest (OCI or Docker schema 2). Raises ``InvalidArgument`` naming what is
    wrong; an index/list is refused here (``select_platform`` reads those), as is a layer of
    a media type Ferry cannot unpack (foreign or encrypted layers)."""
    doc = loads_object(data, "the manifest")
    media = doc.get("mediaType", OCI_MANIFEST if "config" in doc else "")
    if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
        raise InvalidArgument("the manifest is an index of images: select one platform first")
    if media not in MANIFEST_TYPES or doc.get("schemaVersion") != 2:
        raise InvalidArgument(f"unsupported manifest type {media!r} (schema 2 or OCI only)")
    config = _descriptor(doc.get("config"), "the manifest's config")
    layers_raw = doc.get("layers")
    if not isinstance(layers_raw, list):
        raise InvalidArgument("the manifest has no list of layers")
    layers = tuple(_descriptor(v, f"layer {i + 1}") for i, v in enumerate(layers_raw))
    for i, layer in enumerate(layers):
        if layer.media_type not in LAYER_TYPES:
            raise InvalidArgument(f"layer {i + 1} has the unsupported type {layer.media_type!r}")
    return Manifest(config, layers)


def select_platform(data: bytes, os_name: str = "linux", arch: str = "amd64") -> Descriptor:
    """The manifest of ``os_name``/``arch`` in an index or manifest list (Docker's platform
    matching, without variants). Raises ``NotFound``-worthy ``InvalidArgument`` with Docker's
    words when the index has none."""
    doc = loads_object(data, "the image index")
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise InvalidArgument("the image index has no list of manifests")
    for i, entry in enumerate(entries):
        platform = entry.get("platform", {}) if isinstance(entry, dict) else {}
        if platform.get("os") == os_name and platform.get("architecture") == arch:
            return _descriptor(entry, f"manifest {i + 1} of the index")
    raise InvalidArgument(f"no matching manifest for {os_name}/{arch} in the manifest list entries")


@dataclass(frozen=True)
class ImageConfig:
    """What Ferry reads of an image config (the rest is kept verbatim in the document)."""

    diff_ids: tuple[str, ...]
    created: str
    architecture: str
    os: str
    config: Mapping[str, Any]
    history: tuple[Mapping[str, Any], ...]


def parse_config(data: bytes) -> ImageConfig:
    """An image config (OCI config.md); raises ``InvalidArgument`` naming a wrong field."""
    doc = loads_object(data, "the image config")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidArgument('the image config\'s rootfs is not of type "layers"')
    diff_ids = rootfs.get("diff_ids", [])
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and DIGEST_RE.match(d) for d in diff_ids
    ):
        raise InvalidArgument("the image config's rootfs.diff_ids are not sha256 digests")
    config = doc.get("config") or {}
    history = doc.get("history") or []
    if not isinstance(config, dict) or not isinstance(history, list):
        raise InvalidArgument("the image config's config or history has the wrong type")
    return ImageConfig(
        tuple(diff_ids),
        str(doc.get("created") or ""),
        str(doc.get("architecture") or "amd64"),
        str(doc.get("os") or "linux"),
        config,
        tuple(h for h in history if isinstance(h, dict)),
    )


def import_config(diff_id: str, created: str, config: Mapping[str, Any], comment: str) -> bytes:
    """The config ``docker import`` writes: one layer, the changes' ``config``, a history of
    one entry. Serialised once: its bytes are the image id."""
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": dict(config),
        "history": [{"created": created, "comment": comment}],
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def oci_manifest(config_digest: str, config_size: int, layers: Sequence[Descriptor]) -> bytes:
    """An OCI manifest for the store's blobs (what ``push`` and ``save`` write)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in layers],
    }
    return json.dumps(doc, separators=(",", ":")).encode()
