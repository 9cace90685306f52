"""Pull, push, resolve and log in: the image store's side of a registry, through skopeo.

Design notes. A pull asks the registry for the reference's manifest first (``skopeo inspect
--raw``): its sha256 is the image's RepoDigest, and an image already here with that digest is
"up to date" without a transfer. Otherwise ``skopeo copy`` of that very digest (so the tag
cannot move in between) writes into a temporary OCI layout whose blobs go straight to the
store's blob directory (``--dest-shared-blob-dir``): blobs Ferry already has are not fetched
again. Then the layers are unpacked into the layer store (in a thread), the image recorded
and tagged. A manifest list is resolved to linux/amd64. A Docker Hub name is looked for at
each ``registry-mirrors`` entry first, then at Docker Hub, as Docker's daemon does. Quiet
pulls of one reference at once (a node's tasks) share one transfer. A push writes an OCI
layout of the image's blobs (manifest made by Ferry) and copies it with
``--src-shared-blob-dir``.

Progress is Docker's JSON message stream (``jsonmessage``): ``Pulling from library/nginx``,
``Pull complete`` per layer, ``Digest: …``, ``Status: Downloaded newer image for …``.

Credentials are ``runtime.credentials``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ferry.errors import FerryError, Forbidden, InvalidArgument, NotFound, Unavailable
from ferry.model.reference import DEFAULT_DOMAIN, Reference, parse_reference
from ferry.runtime.credentials import Credentials, RegistryAuth
from ferry.runtime.manifests import (
    DOCKER_LAYER,
    DOCKER_LIST,
    OCI_INDEX,
    OCI_LAYER,
    Descriptor,
    loads_object,
    oci_manifest,
    parse_manifest,
    select_platform,
    sha256_of,
)
from ferry.runtime.skopeo import INSPECT_TIMEOUT_S, RegistrySettings, Skopeo, check_mirror

if TYPE_CHECKING:
    from ferry.runtime.images import ImageStore

Progress = Callable[[dict[str, Any]], Awaitable[None]]


async def _quiet(_message: dict[str, Any]) -> None:
    return None


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


class RegistryClient:
    def __init__(self, skopeo: Skopeo, authfile: Path) -> None:
        self.skopeo = skopeo
        self.credentials = Credentials(skopeo, authfile)
        self._auth_args = self.credentials.args
        self._active = 0
        self._pulls: dict[str, asyncio.Task[None]] = {}

    @property
    def busy(self) -> bool:
        """A transfer may be writing blobs: unreferenced blobs must not be removed now."""
        return self._active > 0

    # digests ---------------------------------------------------------------------------------
    def sources(self, ref: Reference) -> list[Reference]:
        """Where ``ref`` is looked for, in Docker's order: a Docker Hub name at each of
        ``registry-mirrors`` first (same path: ``library/nginx``), then Docker Hub."""
        if ref.domain != DEFAULT_DOMAIN:
            return [ref]
        mirrors = [check_mirror(url) for url in self.skopeo.settings.mirrors]
        return [Reference(m, ref.path, ref.tag, ref.digest) for m in mirrors] + [ref]

    async def manifest_digest(
        self, ref: Reference, auth: RegistryAuth | None
    ) -> tuple[str, bytes, Reference]:
        """The digest of ``ref``'s manifest (an index's, for a multi-platform image), the raw
        manifest, and the source that answered (see ``sources``). Raises ``NotFound("No such
        image: <ref>")`` when a source says it has no such image and none has it, else the
        last source's error."""
        errors: list[FerryError] = []
        for source in self.sources(ref):
            try:
                raw = await self._inspect(source, auth)
            except (NotFound, Unavailable, Forbidden) as exc:
                errors.append(exc)
                continue
            return sha256_of(raw), raw, source
        if any(isinstance(e, NotFound) for e in errors):
            raise NotFound(f"No such image: {ref.familiar}")
        raise errors[-1]

    async def _inspect(self, source: Reference, auth: RegistryAuth | None) -> bytes:
        async with self._auth_args("", auth) as auth_args:
            return await self.skopeo.run(
                [
                    "inspect",
                    "--raw",
                    *auth_args,
                    *self.skopeo.tls_flag("", source.domain),
                    f"docker://{source.remote}",
                ],
                source.familiar,
                timeout_s=INSPECT_TIMEOUT_S,
            )

    async def resolve_digest(self, ref: str, auth: RegistryAuth | None = None) -> str | None:
        """``sha256:…`` of ``ref``'s manifest in its registry, or None when the registry
        cannot be reached or does not have it (Docker then goes on without a digest)."""
        try:
            digest, _raw, _source = await self.manifest_digest(parse_reference(ref), auth)
        except (Unavailable, NotFound):
            return None
        return digest

    async def distribution(self, ref: Reference, auth: RegistryAuth | None) -> dict[str, Any]:
        """``GET /distribution/{name}/json``: the manifest's descriptor and its platforms (an
        index's entries, or the image config's os/architecture)."""
        digest, raw, source = await self.manifest_digest(ref, auth)
        doc = loads_object(raw, "the manifest")
        media = str(doc.get("mediaType", ""))
        if media in (OCI_INDEX, DOCKER_LIST):
            platforms = [
                {
                    "architecture": e["platform"].get("architecture", ""),
                    "os": e["platform"].get("os", ""),
                }
                for e in doc.get("manifests", [])
                if isinstance(e.get("platform"), dict)
            ]
        else:
            async with self._auth_args("", auth) as auth_args:
                config = await self.skopeo.run(
                    [
                        "inspect",
                        "--config",
                        "--raw",
                        *auth_args,
                        *self.skopeo.tls_flag("", source.domain),
                        f"docker://{source.repository}@{digest}",
                    ],
                    ref.familiar,
                    timeout_s=INSPECT_TIMEOUT_S,
                )
            parsed = loads_object(config, "the image config")
            platforms = [
                {"architecture": parsed.get("architecture", ""), "os": parsed.get("os", "")}
            ]
        return {
            "Descriptor": {"mediaType": media, "digest": digest, "size": len(raw)},
            "Platforms": platforms,
        }

    # pull ------------------------------------------------------------------------------------
    async def pull(
        self,
        store: ImageStore,
        ref: str,
        auth: RegistryAuth | None = None,
        progress: Progress = _quiet,
    ) -> str:
        """Pull ``ref`` into ``store``; returns the image id. Raises ``NotFound("No such
        image: <ref>")``, ``Unavailable``, ``Forbidden`` (see ``skopeo.classify``)."""
        parsed = parse_reference(ref)
        key = parsed.full
        running = self._pulls.get(key)
        if running is None or progress is not _quiet:
            task = asyncio.get_running_loop().create_task(self._pull(store, parsed, auth, progress))
            if running is None:
                self._pulls[key] = task
                task.add_done_callback(lambda _t: self._pulls.pop(key, None))
            running = task
        await asyncio.shield(running)
        return store.lookup(parsed.familiar if not parsed.digest else ref)

    async def _pull(
        self, store: ImageStore, ref: Reference, auth: RegistryAuth | None, progress: Progress
    ) -> None:
        digest, raw, source = await self.manifest_digest(ref, auth)  # fails before any output
        await progress({"status": f"Pulling from {ref.path}", "id": ref.tag or ref.digest})
        repo_digest = f"{ref.familiar_repository}@{digest}"
        tags = [ref.familiar] if not ref.digest else []
        try:
            image_id = store.lookup(repo_digest)
        except NotFound:
            image_id = ""
        if image_id:
            for tag in tags:
                store.tag(image_id, tag)
            await progress({"status": f"Digest: {digest}"})
            await progress({"status": f"Status: Image is up to date for {ref.familiar}"})
            return
        await self._copy_in(
            store,
            ref,
            source=source,
            digest=digest,
            raw=raw,
            repo_digest=repo_digest,
            tags=tags,
            auth=auth,
            progress=progress,
        )
        await progress({"status": f"Digest: {digest}"})
        await progress({"status": f"Status: Downloaded newer image for {ref.familiar}"})

    async def _copy_in(
        self,
        store: ImageStore,
        ref: Reference,
        *,
        source: Reference,
        digest: str,
        raw: bytes,
        repo_digest: str,
        tags: list[str],
        auth: RegistryAuth | None,
        progress: Progress,
    ) -> None:
        from ferry.runtime.images import LayerRef

        media = loads_object(raw, "the manifest").get("mediaType", "")
        wanted = digest
        if media in (OCI_INDEX, DOCKER_LIST):
            wanted = select_platform(raw).digest
        self._active += 1
        try:
            work = Path(tempfile.mkdtemp(prefix="pull-", dir=self._work()))
            try:
                async with self._auth_args("src-", auth) as auth_args:
                    await self.skopeo.run(
                        [
                            "copy",
                            "--quiet",
                            *auth_args,
                            *self.skopeo.tls_flag("src-", source.domain),
                            "--dest-oci-accept-uncompressed-layers",
                            f"--dest-shared-blob-dir={store.layers.blob_dir}",
                            f"docker://{source.repository}@{wanted}",
                            f"oci:{work}:pull",
                        ],
                        ref.familiar,
                    )
                manifest_digest = _index_manifest(work)
            finally:
                await asyncio.to_thread(_remove, work)
            manifest = parse_manifest(store.layers.read_blob(manifest_digest))
            config = store.layers.read_blob(manifest.config.digest)
            from ferry.runtime.manifests import parse_config

            diff_ids = parse_config(config).diff_ids
            if len(diff_ids) != len(manifest.layers):
                raise InvalidArgument(f"{ref.familiar}: the manifest and config disagree on layers")
            layers = [
                LayerRef(d.digest, d.media_type, diff_id)
                for d, diff_id in zip(manifest.layers, diff_ids, strict=True)
            ]
            for layer in layers:
                await progress(
                    {"status": "Pulling fs layer", "progressDetail": {}, "id": _short(layer.blob)}
                )
            image_id = await asyncio.to_thread(
                store.add, config, layers, tags=tags, repo_digest=repo_digest, source=ref.familiar
            )
            store.remember_blobs(image_id, [manifest_digest])
            for layer in layers:
                await progress(
                    {"status": "Pull complete", "progressDetail": {}, "id": _short(layer.blob)}
                )
        finally:
            self._active -= 1

    def _work(self) -> Path:
        path = self.skopeo.work_dir / "transfers"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # push ------------------------------------------------------------------------------------
    async def push(
        self,
        store: ImageStore,
        ref: str,
        auth: RegistryAuth | None = None,
        progress: Progress = _quiet,
    ) -> str:
        """``docker push``: the image tagged ``ref`` to the registry its name says; returns
        the pushed manifest's digest. Raises ``NotFound`` when no image has that tag."""
        parsed = parse_reference(ref)
        if parsed.digest:
            raise InvalidArgument(f"cannot push a digest reference: {ref}")
        image = store.get(parsed.familiar)
        await progress({"status": f"The push refers to repository [{parsed.repository}]"})
        blobs = store.layer_refs(image.image_id)
        descriptors = [
            Descriptor(
                _oci_type(b.media_type), b.blob, store.layers.blob_path(b.blob).stat().st_size
            )
            for b in blobs
        ]
        config = store.layers.read_blob(image.image_id)
        manifest = oci_manifest(image.image_id, len(config), descriptors)
        manifest_digest = store.layers.put_blob(manifest)
        store.remember_blobs(image.image_id, [manifest_digest])
        self._active += 1
        work = Path(tempfile.mkdtemp(prefix="push-", dir=self._work()))
        try:
            _write_layout(work, manifest_digest, len(manifest))
            async with self._auth_args("dest-", auth) as auth_args:
                await self.skopeo.run(
                    [
                        "copy",
                        "--quiet",
                        *auth_args,
                        *self.skopeo.tls_flag("dest-", parsed.domain),
                        f"--src-shared-blob-dir={store.layers.blob_dir}",
                        f"--digestfile={work / 'digest'}",
                        f"oci:{work}:push",
                        f"docker://{parsed.remote}",
                    ],
                    parsed.familiar,
                )
            digest = (work / "digest").read_text().strip()
        finally:
            self._active -= 1
            await asyncio.to_thread(_remove, work)
        for d in descriptors:
            await progress({"status": "Pushed", "progressDetail": {}, "id": _short(d.digest)})
        store.add_repo_digest(image.image_id, f"{parsed.familiar_repository}@{digest}")
        size = len(manifest)
        await progress({"status": f"{parsed.tag}: digest: {digest} size: {size}"})
        await progress(
            {"progressDetail": {}, "aux": {"Tag": parsed.tag, "Digest": digest, "Size": size}}
        )
        return digest

    # credentials -----------------------------------------------------------------------------
    async def login(self, username: str, password: str, serveraddress: str) -> None:
        await self.credentials.login(username, password, serveraddress)

    async def logout(self, serveraddress: str) -> None:
        await self.credentials.logout(serveraddress)


class StoreConfig(Protocol):
    """What ``make_image_store`` needs of ferryd's settings (``daemon.config.DaemonConfig``)."""

    @property
    def images_dir(self) -> Path: ...
    @property
    def registry_dir(self) -> Path: ...
    @property
    def registry_auth_path(self) -> Path: ...
    @property
    def registry_mirrors(self) -> tuple[str, ...]: ...
    @property
    def insecure_registries(self) -> tuple[str, ...]: ...


def make_image_store(config: StoreConfig) -> ImageStore:
    from ferry.runtime.images import ImageStore

    settings = RegistrySettings(config.registry_mirrors, config.insecure_registries)
    client = RegistryClient(Skopeo(config.registry_dir, settings), config.registry_auth_path)
    return ImageStore(config.images_dir, client)


def _oci_type(media_type: str) -> str:
    """Docker schema 2 layer types as their OCI equivalents (the manifest Ferry writes is OCI)."""
    docker_plain = "application/vnd.docker.image.rootfs.diff.tar"
    known = {DOCKER_LAYER: OCI_LAYER + "+gzip", docker_plain: OCI_LAYER}
    return known.get(media_type, media_type)


def _index_manifest(layout: Path) -> str:
    index = loads_object((layout / "index.json").read_bytes(), "the OCI layout's index.json")
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise InvalidArgument(f"skopeo wrote {len(manifests)} manifests, expected one")
    return str(manifests[0]["digest"])


def _write_layout(layout: Path, manifest_digest: str, size: int) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": size,
                "annotations": {"org.opencontainers.image.ref.name": "push"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))


def _remove(path: Path) -> None:
    from ferry.kernel.inroot import remove_tree

    with contextlib.suppress(FileNotFoundError):
        remove_tree(path)
