"""Images in and out of tarballs: ``docker import``, ``docker load`` and ``docker save``.

- ``import_tar``: a root filesystem tarball (plain, ``docker export``; compressed or not) is
  one layer with the config ``docker import`` makes (``-c`` changes applied, ``-m``'s message
  the history comment in place of "Imported from -", as Docker's ``postImagesCreate``); a
  ``docker save`` archive of one image is loaded and tagged with the name given (its own
  history kept: a message is refused for it).
- ``load``: a docker-archive (``manifest.json``: ``Config``, ``RepoTags``, ``Layers`` per
  image; Docker's ``image/tarexport``) or an OCI image layout (``oci-layout``, ``index.json``,
  ``blobs/``; the tags from ``org.opencontainers.image.ref.name``). Every layer is checked
  against the config's DiffIDs; every path the archive names is a member of it, nothing else.
- ``save``: one or more images in the archive Docker 25 and later write, both a
  docker-archive and an OCI image layout (uncompressed layer tars), which ``docker load``
  here or in Docker, or ``skopeo``/``oci:`` tools, read back to the same image id.

Be aware: archives are read from a file (uploads are spooled to disk first): members are
found by name, which a stream cannot do.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry import jsontext
from ferry.errors import InvalidArgument, NotFound
from ferry.kernel.inroot import clean
from ferry.model.import_changes import apply_changes
from ferry.model.reference import parse_reference
from ferry.model.times import now_iso
from ferry.runtime.compression import decompressed
from ferry.runtime.manifests import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    import_config,
    loads_object,
    parse_config,
    parse_manifest,
)

if TYPE_CHECKING:
    from ferry.runtime.images import ImageStore, LayerRef

SMALL_BYTES = 4 << 20  # a manifest or config larger than this is refused
CHUNK_BYTES = 1 << 20
REF_NAME = "org.opencontainers.image.ref.name"


def _plain_blob(store: ImageStore, stream: Any) -> str:
    """Store a (possibly compressed) tar stream uncompressed; its digest is its DiffID."""
    blobs = store.layers.blob_dir / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".import-", dir=blobs)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, decompressed(stream) as plain:
            for chunk in iter(lambda: plain.read(CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
        name = "sha256:" + digest.hexdigest()
        os.chmod(tmp, 0o644)
        os.replace(tmp, store.layers.blob_path(name))
        return name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def import_tar(
    store: ImageStore,
    path: Path,
    name: str,
    source: str,
    changes: Sequence[str],
    *,
    message: str = "",
) -> str:
    """See the module notes; returns the image id. ``message``: the history comment (Docker's
    ``docker import -m``; "Imported from -" when empty). A failed import leaves no blob
    behind. Raises ``InvalidArgument`` for a message given with a ``docker save`` archive."""
    try:
        with store.writing():
            return _import_tar(store, path, name, source, changes, message=message)
    except BaseException:
        store.collect()
        raise


def _import_tar(
    store: ImageStore, path: Path, name: str, source: str, changes: Sequence[str], *, message: str
) -> str:
    from ferry.runtime.images import LayerRef

    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    with _open_tar(path) as outer:
        if outer is not None and _has(outer, "manifest.json"):
            if message:
                raise InvalidArgument(
                    f"{source} is a docker save archive, which keeps its own history: a commit "
                    "message (-m) applies to a root filesystem tarball only"
                )
            return _load_docker(store, outer, source, changes, tags=[name])[0][0]
    changed = apply_changes(changes)  # a bad change is refused before the upload is stored
    with open(path, "rb") as stream:
        diff_id = _plain_blob(store, stream)
    created = now_iso()
    config = import_config(diff_id, created, changed, message or "Imported from -")
    return store.add(config, [LayerRef(diff_id, OCI_LAYER, diff_id)], tags=[name], source=source)


def load(store: ImageStore, path: Path, source: str) -> list[tuple[str, list[str]]]:
    """``docker load``: returns each image loaded, as its id and the tags the archive gave it.
    A failed load leaves no blob behind (the images loaded before the failure stay)."""
    try:
        with store.writing():
            return _load(store, path, source)
    except BaseException:
        store.collect()
        raise


def _load(store: ImageStore, path: Path, source: str) -> list[tuple[str, list[str]]]:
    with _open_tar(path) as outer:
        if outer is None:
            raise InvalidArgument(f"{source}: not a tar archive (docker save or OCI layout)")
        if _has(outer, "manifest.json"):
            return _load_docker(store, outer, source, (), tags=None)
        if _has(outer, "index.json"):
            return _load_oci(store, outer, source)
    raise InvalidArgument(f"{source}: no manifest.json or index.json: not a docker save archive")


@contextlib.contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile | None]:
    try:
        outer = tarfile.open(path)  # noqa: SIM115 - closed below, once known to be a tar
    except (tarfile.TarError, OSError, EOFError):
        yield None  # not an archive we can index: a root filesystem stream, maybe compressed
        return
    with outer:
        yield outer


def _has(outer: tarfile.TarFile, name: str) -> bool:
    try:
        outer.getmember(name)
    except KeyError:
        return False
    return True


def _member(outer: tarfile.TarFile, name: Any, source: str) -> tarfile.TarInfo:
    if not isinstance(name, str) or not name or clean(name) != name:
        raise InvalidArgument(f"{source}: refusing the path {name!r} (not a name in the archive)")
    try:
        member = outer.getmember(name)
        if member.issym():  # docker save stores a layer once and links the others to it
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            if clean(target) != target or target.startswith(".."):
                raise InvalidArgument(f"{source}: {name} links outside the archive")
            member = outer.getmember(target)
    except KeyError as exc:
        raise InvalidArgument(f"{source}: {name} is not in the archive") from exc
    if not member.isfile():
        raise InvalidArgument(f"{source}: {name} is not a regular file of the archive")
    return member


def _extract(outer: tarfile.TarFile, name: Any, source: str) -> Any:
    data = outer.extractfile(_member(outer, name, source))
    if data is None:  # pragma: no cover - a regular member always has data
        raise InvalidArgument(f"{source}: {name} has no data")
    return data


def _read_small(outer: tarfile.TarFile, name: Any, source: str) -> bytes:
    member = _member(outer, name, source)
    if member.size > SMALL_BYTES:
        raise InvalidArgument(f"{source}: {name} is larger than {SMALL_BYTES} bytes")
    data = outer.extractfile(member)
    return data.read() if data is not None else b""


def _layers_from(
    store: ImageStore, outer: tarfile.TarFile, names: Sequence[Any], source: str
) -> list[LayerRef]:
    from ferry.runtime.images import LayerRef

    out = []
    for name in names:
        diff_id = _plain_blob(store, _extract(outer, name, source))
        out.append(LayerRef(diff_id, OCI_LAYER, diff_id))
    return out


def _load_docker(
    store: ImageStore,
    outer: tarfile.TarFile,
    source: str,
    changes: Sequence[str],
    tags: list[str] | None,
) -> list[tuple[str, list[str]]]:
    manifest = jsontext.loads(_read_small(outer, "manifest.json", source) or b"null", source)
    if not isinstance(manifest, list) or not all(isinstance(m, dict) for m in manifest):
        raise InvalidArgument(f"{source}: manifest.json is not a docker save manifest")
    if tags is not None and len(manifest) != 1:  # an import names one image
        raise InvalidArgument(
            f"{source}: the archive holds {len(manifest)} images; import one image per "
            "archive (docker save IMAGE), or use 'ferry image load'"
        )
    ids = []
    for entry in manifest:
        layers = entry.get("Layers")
        if not isinstance(layers, list):
            raise InvalidArgument(f"{source}: manifest.json's Layers is not a list of paths")
        refs = _layers_from(store, outer, layers, source)
        config = _read_small(outer, entry.get("Config"), source) if "Config" in entry else None
        if config is None:  # an old or hand-made archive without a config: as import does
            config = import_config(refs[-1].diff_id, now_iso(), {}, "Imported from -")
            if len(refs) != 1:
                raise InvalidArgument(f"{source}: manifest.json names no Config for its layers")
        if changes:
            doc = loads_object(config, "the image config")
            doc["config"] = apply_changes(changes, doc.get("config") or {})
            config = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        wanted = tags if tags is not None else list(entry.get("RepoTags") or [])
        for tag in wanted:
            parse_reference(tag)
        ids.append((store.add(config, refs, tags=wanted, source=source), wanted))
    return ids


def _load_oci(
    store: ImageStore, outer: tarfile.TarFile, source: str
) -> list[tuple[str, list[str]]]:
    from ferry.runtime.images import LayerRef

    index = loads_object(_read_small(outer, "index.json", source), "index.json")
    ids = []
    for entry in index.get("manifests") or []:
        digest = str(entry.get("digest", ""))
        blob = "blobs/" + digest.replace(":", "/", 1)
        manifest = parse_manifest(_read_small(outer, blob, source))
        config = _read_small(outer, "blobs/" + manifest.config.digest.replace(":", "/"), source)
        diff_ids = parse_config(config).diff_ids
        refs = []
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=False):
            name = "blobs/" + layer.digest.replace(":", "/", 1)
            got = _plain_blob(store, _extract(outer, name, source))
            refs.append(LayerRef(got, OCI_LAYER, diff_id))
        annotations = entry.get("annotations") or {}
        tag = annotations.get("io.containerd.image.name") or annotations.get(REF_NAME, "")
        tags = [tag] if tag and ("/" in tag or ":" in tag) else []
        ids.append((store.add(config, refs, tags=tags, source=source), tags))
    return ids


def save(store: ImageStore, refs: Sequence[str], out: Path) -> None:
    """``docker save REF…`` into ``out``, as Docker 25 and later write it: one archive that is
    both a docker-archive (``manifest.json``) and an OCI image layout (``oci-layout``,
    ``index.json``, every file under ``blobs/sha256/``; layers uncompressed, so each layer's
    digest is its DiffID). Raises ``NotFound`` for a name that is not an image here."""
    entries: dict[str, list[str]] = {}
    for ref in refs:
        image_id = store.lookup(ref)
        tags = entries.setdefault(image_id, [])
        image = store.get(ref)
        if image.name != image_id and image.name not in tags:
            tags.append(image.name)
    written: set[str] = set()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:

        def blob(digest: str, data: bytes) -> str:
            name = "blobs/" + digest.replace(":", "/", 1)
            if name not in written:
                _add_bytes(tar, name, data)
                written.add(name)
            return name

        docker_manifest, index = [], []
        for image_id, tags in entries.items():
            config = store.layers.read_blob(image_id)
            layers = []
            for layer in store.layer_refs(image_id):
                name = "blobs/" + layer.diff_id.replace(":", "/", 1)
                if name not in written:
                    size = _add_layer(tar, name, store.layers.blob_path(layer.blob))
                    written.add(name)
                else:
                    size = tar.getmember(name).size
                layers.append(
                    {"mediaType": OCI_LAYER, "digest": layer.diff_id, "size": size, "name": name}
                )
            docker_manifest.append(
                {
                    "Config": blob(image_id, config),
                    "RepoTags": tags or None,
                    "Layers": [layer["name"] for layer in layers],
                }
            )
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": image_id, "size": len(config)},
                    "layers": [{k: v for k, v in lay.items() if k != "name"} for lay in layers],
                }
            ).encode()
            digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            blob(digest, manifest)
            for tag in tags or [""]:
                entry: dict[str, Any] = {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                }
                if tag:
                    entry["annotations"] = {
                        "io.containerd.image.name": tag,
                        REF_NAME: tag.rsplit(":", 1)[-1],
                    }
                index.append(entry)
        _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
        _add_bytes(tar, "index.json", json.dumps(doc).encode())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _add_layer(tar: tarfile.TarFile, name: str, blob: Path) -> int:
    """A layer as an uncompressed tar (the blob may be compressed: unpacked to a spool file
    first, whose size the header needs); returns its size in bytes."""
    with tempfile.TemporaryFile() as spool:
        with open(blob, "rb") as f, decompressed(f) as plain:
            for chunk in iter(lambda: plain.read(CHUNK_BYTES), b""):
                spool.write(chunk)
        size = spool.tell()
        spool.seek(0)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        tar.addfile(info, spool)
        return size
