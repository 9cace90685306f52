"""Images: a config and an ordered list of layers, kept by content; names are tags on them.

Design notes. An image is its config (the OCI config JSON, kept verbatim as a blob: its sha256
is the image id, as in Docker) and its layers, bottom first, each unpacked once in the layer
store (``runtime.layers``) and shared by every image that has it. Containers see an image
through an overlay mount of its layer directories (``Image.layers``) under their own upper
directory. Names are tags (``tags.json``: familiar name → image id, Docker's
``repositories.json``); an image without tags is *dangling*. Records live in
``imagedb/<hex>.json``: the layers' blobs and media types, the registry digests
(``RepoDigests``) and the manifest it came with.

Where images come from: ``import_tar`` (``docker import``, with ``-c`` changes) and
``image_archive`` (``docker load``/``save``) here; registries through ``runtime.registry``
(``ensure``, ``resolve_digest``: skopeo).

Be aware: images imported by a Ferry before layers (a flat ``<name>/rootfs`` directory) are
not read: ``get`` names them and asks for a new import; ``legacy_names`` lists them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.daemon.files import read_json, write_json
from ferry.errors import InvalidArgument, NotFound
from ferry.model.image_removal import ImageUser, plan_removal
from ferry.model.reference import image_id_prefix, normalise, parse_reference
from ferry.model.times import now_iso
from ferry.runtime.credentials import RegistryAuth
from ferry.runtime.layers import Layer, LayerStore
from ferry.runtime.manifests import parse_config, sha256_of

if TYPE_CHECKING:
    from ferry.runtime.registry import RegistryClient

__all__ = ["Image", "ImageStore", "ImageUser", "RegistryAuth", "normalise"]
PULL_POLICIES = ("missing", "always", "never")


@dataclass(frozen=True)
class Image:
    name: str  # the name it was asked by: "nginx:latest", or its id when asked by id
    image_id: str  # sha256 of its config
    created_at: str  # the config's "created" (RFC 3339)
    size_bytes: int
    rootfs: Path  # the top layer's directory (of a one-layer image: its whole root)
    config: Mapping[str, Any] = field(default_factory=dict)  # the config's "config" object
    layers: tuple[Path, ...] = ()  # layer directories, bottom first
    diff_ids: tuple[str, ...] = ()
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    architecture: str = "amd64"
    os: str = "linux"
    history: tuple[Mapping[str, Any], ...] = ()
    layer_sizes: tuple[int, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})


@dataclass(frozen=True)
class LayerRef:
    blob: str
    media_type: str
    diff_id: str


class ImageStore:
    def __init__(self, root: Path, registry: RegistryClient | None = None) -> None:
        self.root = root
        self.layers = LayerStore(root)
        self.registry = registry
        self._db = root / "imagedb"
        self._tags_path = root / "tags.json"
        self._lock = threading.RLock()
        self._empty = root / "empty"
        self._writers = 0  # imports and loads under way: their blobs are not referenced yet

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around an import or a load: ``collect`` leaves blobs and layers alone meanwhile."""
        with self._lock:
            self._writers += 1
        try:
            yield
        finally:
            with self._lock:
                self._writers -= 1

    # reading ---------------------------------------------------------------------------------
    def _tags(self) -> dict[str, str]:
        return dict(read_json(self._tags_path) or {})

    def _record(self, image_id: str) -> dict[str, Any] | None:
        hex_id = image_id.removeprefix("sha256:")
        value = read_json(self._db / f"{hex_id}.json")
        return value if isinstance(value, dict) else None

    def _ids(self) -> list[str]:
        if not self._db.is_dir():
            return []
        return sorted("sha256:" + p.stem for p in self._db.glob("*.json"))

    def lookup(self, ref: str) -> str:
        """The image id ``ref`` names: a tag, ``name@digest`` (a RepoDigest), or an id or a
        unique prefix of one. Raises ``NotFound`` with Docker's words."""
        tags = self._tags()
        try:
            parsed = parse_reference(ref)
        except InvalidArgument:
            parsed = None
        if parsed is not None:
            if parsed.digest:
                wanted = f"{parsed.familiar_repository}@{parsed.digest}"
                for image_id in self._ids():
                    if wanted in (self._record(image_id) or {}).get("repo_digests", []):
                        return image_id
            elif parsed.familiar in tags:
                return tags[parsed.familiar]
        prefix = image_id_prefix(ref)
        if prefix is not None:
            found = [i for i in self._ids() if i.removeprefix("sha256:").startswith(prefix)]
            if len(found) == 1:
                return found[0]
        if parsed is None and prefix is None:
            raise InvalidArgument(f"invalid reference format: {ref!r}")
        raise NotFound(self._missing(ref))

    def _missing(self, ref: str) -> str:
        if ref in self.legacy_names() or (normalise_or(ref) in self.legacy_names()):
            return (
                f"No such image: {ref} (imported by an older ferryd as a flat root filesystem, "
                f"which this one does not read): import it again with 'ferry image import'"
            )
        return f"No such image: {ref}"

    def get(self, ref: str) -> Image:
        """The image ``ref`` names. Raises ``NotFound("No such image: <ref>")``."""
        image_id = self.lookup(ref)
        by_id = image_id_prefix(ref) is not None and not self._is_tag(ref)
        return self._image(image_id, image_id if by_id else normalise(ref))

    def _is_tag(self, ref: str) -> bool:
        try:
            parsed = parse_reference(ref)
        except InvalidArgument:
            return False
        return not parsed.digest and parsed.familiar in self._tags()

    def _image(self, image_id: str, name: str = "") -> Image:
        record = self._record(image_id)
        if record is None:
            raise NotFound(f"No such image: {name or image_id}")
        parsed = parse_config(self.layers.read_blob(image_id))
        layers = [self.layers.get(d) for d in parsed.diff_ids]
        tags = tuple(sorted(t for t, i in self._tags().items() if i == image_id))
        dirs = tuple(layer.path for layer in layers)
        if not dirs:
            self._empty.mkdir(parents=True, exist_ok=True)
        return Image(
            name=name or (tags[0] if tags else image_id),
            image_id=image_id,
            created_at=parsed.created or record.get("stored_at", ""),
            size_bytes=sum(layer.size_bytes for layer in layers),
            rootfs=dirs[-1] if dirs else self._empty,
            config=dict(parsed.config),
            layers=dirs,
            diff_ids=parsed.diff_ids,
            repo_tags=tags,
            repo_digests=tuple(record.get("repo_digests", [])),
            architecture=parsed.architecture,
            os=parsed.os,
            history=parsed.history,
            layer_sizes=tuple(layer.size_bytes for layer in layers),
        )

    def all(self) -> list[Image]:
        return [self._image(i) for i in self._ids()]

    def layer_refs(self, image_id: str) -> list[Layer]:
        """The image's layers with their blobs (for ``push`` and ``save``)."""
        return [self.layers.get(d) for d in parse_config(self.layers.read_blob(image_id)).diff_ids]

    def legacy_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        out = []
        for meta in sorted(self.root.glob("*/image.json")):
            record = read_json(meta) or {}
            out.append(str(record.get("name", meta.parent.name)))
        return out

    # writing ---------------------------------------------------------------------------------
    def add(
        self,
        config: bytes,
        layers: Sequence[LayerRef],
        *,
        tags: Sequence[str] = (),
        repo_digest: str = "",
        source: str = "",
    ) -> str:
        """Record an image whose blobs are in the store: unpack its layers (blocking: call
        from a thread), write its record, point ``tags`` at it. Returns the image id."""
        parsed = parse_config(config)
        if tuple(layer.diff_id for layer in layers) != parsed.diff_ids:
            raise InvalidArgument(f"{source}: the layers are not the config's rootfs.diff_ids")
        for number, layer in enumerate(layers, 1):
            label = f"{source}, layer {number} of {len(layers)}"
            self.layers.ensure(layer.blob, layer.media_type, layer.diff_id, label)
        image_id = self.layers.put_blob(config)
        with self._lock:
            record = self._record(image_id) or {"id": image_id, "stored_at": now_iso()}
            digests = list(record.get("repo_digests", []))
            if repo_digest and repo_digest not in digests:
                digests.append(repo_digest)
            record["repo_digests"] = digests
            write_json(self._db / f"{image_id.removeprefix('sha256:')}.json", record)
            for tag in tags:
                self._set_tag(normalise(tag), image_id)
        return image_id

    def _set_tag(self, name: str, image_id: str) -> None:
        with self._lock:
            tags = self._tags()
            tags[name] = image_id
            write_json(self._tags_path, tags)

    def tag(self, source: str, target: str) -> Image:
        """``docker tag SOURCE TARGET``: a digest cannot be a tag's target."""
        image_id = self.lookup(source)
        parsed = parse_reference(target)
        if parsed.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        self._set_tag(parsed.familiar, image_id)
        return self._image(image_id, parsed.familiar)

    def import_tar(
        self, tar_path: Path, name: str, source: str = "", changes: Sequence[str] = ()
    ) -> Image:
        """``docker import`` (a root filesystem tarball, one layer) or a ``docker save``
        archive of one image, tagged ``name``. See ``image_archive.import_tar``."""
        from ferry.runtime.image_archive import import_tar

        image_id = import_tar(self, tar_path, normalise(name), source or tar_path.name, changes)
        return self._image(image_id, normalise(name))

    # removing --------------------------------------------------------------------------------
    def remove(
        self, ref: str, users: Sequence[ImageUser], force: bool = False
    ) -> list[dict[str, str]]:
        """``docker rmi [-f] REF``, by Docker's rules (``model.image_removal``): a tag or a
        ``name@digest`` is untagged, and the image deleted once it has no reference and no
        container; an id deletes the image with its references. ``users``: the containers of
        the image. Returns Docker's ``{"Untagged": …}``/``{"Deleted": …}`` list; raises
        ``Conflict`` with Docker's words, ``NotFound``."""
        with self._lock:
            image_id = self.lookup(ref)
            tags = sorted(t for t, i in self._tags().items() if i == image_id)
            record = self._record(image_id) or {}
            digests = list(record.get("repo_digests", []))
            refers = self._reference(ref, tags, digests)
            plan = plan_removal(
                image_id, refers, tags=tags, digests=digests, users=users, force=force, typed=ref
            )
            self._drop_tags(plan.tags)
            if plan.digests and not plan.delete:
                record["repo_digests"] = [d for d in digests if d not in plan.digests]
                write_json(self._db / f"{image_id.removeprefix('sha256:')}.json", record)
            if plan.delete:
                (self._db / f"{image_id.removeprefix('sha256:')}.json").unlink(missing_ok=True)
        if plan.delete:
            self.collect()
        return plan.records()

    @staticmethod
    def _reference(ref: str, tags: Sequence[str], digests: Sequence[str]) -> str | None:
        """The familiar tag or ``name@digest`` ``ref`` is among the image's, None when it
        names the image by id."""
        try:
            parsed = parse_reference(ref)
        except InvalidArgument:
            return None
        if parsed.digest:
            wanted = f"{parsed.familiar_repository}@{parsed.digest}"
            return wanted if wanted in digests else None
        return parsed.familiar if parsed.familiar in tags else None

    def by_id(self, image_id: str, name: str = "") -> Image:
        """The image of exactly this id (a container's pinned image), whatever its tags say
        now. Raises ``NotFound("No such image: <name or id>")``."""
        return self._image(image_id, name or image_id)

    def _drop_tags(self, names: Sequence[str]) -> None:
        with self._lock:
            tags = self._tags()
            for name in names:
                tags.pop(name, None)
            write_json(self._tags_path, tags)

    def collect(self) -> list[str]:
        """Remove layers and blobs no image holds any more (not while a transfer may be
        writing blobs: ``registry`` says so)."""
        if self._writers or (self.registry is not None and self.registry.busy):
            return []  # the next removal collects what is left
        keep_layers: set[str] = set()
        keep_blobs: set[str] = set()
        for image_id in self._ids():
            record = self._record(image_id) or {}
            keep_blobs.add(image_id)
            keep_blobs.update(record.get("blobs", []))
            for layer in self.layer_refs(image_id):
                keep_layers.add(layer.diff_id)
                keep_blobs.add(layer.blob)
        return self.layers.remove_unused(keep_layers, keep_blobs)

    def remember_blobs(self, image_id: str, blobs: Sequence[str]) -> None:
        """Blobs besides config and layers an image keeps (its manifest, for ``push``)."""
        with self._lock:
            record = self._record(image_id)
            if record is not None:
                record["blobs"] = sorted(set(record.get("blobs", [])) | set(blobs))
                write_json(self._db / f"{image_id.removeprefix('sha256:')}.json", record)

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        with self._lock:
            record = self._record(image_id)
            if record is not None and repo_digest not in record.get("repo_digests", []):
                record["repo_digests"] = [*record.get("repo_digests", []), repo_digest]
                write_json(self._db / f"{image_id.removeprefix('sha256:')}.json", record)

    # registries ------------------------------------------------------------------------------
    async def resolve_digest(self, ref: str, auth: RegistryAuth | None = None) -> str | None:
        """The manifest digest (``sha256:…``) of ``ref`` in its registry, or None when the
        registry cannot be reached or has no such image (``service create`` then goes on
        without one, as Docker does)."""
        if self.registry is None:
            return None
        return await self.registry.resolve_digest(ref, auth)

    async def ensure(
        self, ref: str, *, pull: str = "missing", auth: RegistryAuth | None = None
    ) -> Image:
        """The image ``ref``, pulled first when ``pull`` (Docker's ``--pull``: ``missing``,
        ``always``, ``never``) says so. Raises ``NotFound("No such image: <ref>")`` when no
        registry has it (or ``never`` and it is absent), ``Unavailable`` when the registry
        cannot be reached, ``InvalidArgument`` for a bad reference or policy."""
        if pull not in PULL_POLICIES:
            raise InvalidArgument(f"invalid pull policy {pull!r}: use always, missing or never")
        if pull != "always":
            try:
                return self.get(ref)
            except NotFound:
                if pull == "never" or self.registry is None:
                    raise
        if self.registry is None:
            raise NotFound(f"No such image: {ref}")
        await self.registry.pull(self, ref, auth)
        return self.get(ref)


def normalise_or(ref: str) -> str:
    try:
        return normalise(ref)
    except InvalidArgument:
        return ref


def config_digest(config: bytes) -> str:
    return sha256_of(config)
