"""``ferry lab images``: build the lab's images (cached) and fill the registry store labs serve.

The cache, under ``/var/cache/ferry`` (``FERRY_IMAGE_CACHE``), as scripts/tools-image.sh keeps
it: one artefact per recipe hash, built once, safe to re-run, a changed recipe builds anew.
- ``images/<slug>-<recipe hash>.oci/``: each image as an OCI layout (mmdebstrap's root
  filesystem as one gzip layer, :mod:`ferry.lab.oci`).
- ``registry-<set hash>/``: a distribution server's storage holding every image under its
  Docker Hub name, filled by ``skopeo copy`` into a registry started on loopback for the
  purpose; the set hash covers every recipe hash, so a snapshot never changes once made (labs
  mount it as the lower layer of their registry's storage). ``registry`` links to the newest.

Be aware: old snapshots and layouts are not removed (a lab may still have one mounted);
``rm -rf /var/cache/ferry/registry-* /var/cache/ferry/images`` while no lab runs frees them.
Builds take the cache's lock, so two runs at once build each image once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ferry.errors import Unavailable
from ferry.kernel import filelock, proc
from ferry.lab import oci
from ferry.lab.recipes import RECIPES, Recipe, mmdebstrap_argv, setup_script
from ferry.lab.registry import REGISTRY_BINARY, registry_config, wait_listening

CACHE = Path(os.environ.get("FERRY_IMAGE_CACHE", "/var/cache/ferry"))
BUILD_TIMEOUT_S = 900.0
PUSH_TIMEOUT_S = 300.0
# beside the server's own docker/ tree in a snapshot: which images it holds, for people
CONTENTS_FILE = "ferry-images.json"
Say = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImage:
    recipe: Recipe
    layout: Path
    built_s: float  # seconds this run spent building it (0 when cached)


def layout_path(recipe: Recipe, cache: Path = CACHE) -> Path:
    return cache / "images" / f"{recipe.slug}-{recipe.recipe_hash()}.oci"


def store_path(recipes: Sequence[Recipe] = RECIPES, cache: Path = CACHE) -> Path:
    """The registry snapshot holding exactly ``recipes``' images (one per set of hashes)."""
    ids = sorted(f"{r.ref}@{r.recipe_hash()}" for r in recipes)
    return cache / f"registry-{hashlib.sha256(' '.join(ids).encode()).hexdigest()[:12]}"


def current_store(cache: Path = CACHE) -> Path:
    """The registry store labs mount: the newest snapshot, or an empty directory before
    ``ferry lab images`` has run (the lab's registry then serves nothing, and says so)."""
    link = cache / "registry"
    if link.is_dir():
        return link.resolve()
    empty = cache / "registry-empty"
    empty.mkdir(parents=True, exist_ok=True)
    return empty


def build_all(recipes: Sequence[Recipe] = RECIPES, say: Say = print) -> list[BuiltImage]:
    """Build what is missing, fill the registry snapshot if missing; returns every image."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with filelock.exclusive(CACHE / "lab-images.lock"):
        built = [build_image(recipe, say) for recipe in recipes]
        store = store_path(recipes)
        if not store.is_dir():
            fill_store(store, built, say)
        link = CACHE / "registry"
        partial_link = CACHE / "registry.partial-link"
        partial_link.unlink(missing_ok=True)
        partial_link.symlink_to(store.name)
        os.replace(partial_link, link)  # atomic: a lab coming up sees the old or the new
    return built


def build_image(recipe: Recipe, say: Say = print) -> BuiltImage:
    """The recipe's OCI layout from the cache, built with mmdebstrap when missing."""
    layout = layout_path(recipe)
    if (layout / "index.json").exists():
        return BuiltImage(recipe, layout, 0.0)
    say(f"building {recipe.ref} with mmdebstrap ({', '.join(recipe.packages)}) …")
    started = time.monotonic()
    layout.parent.mkdir(parents=True, exist_ok=True)
    partial = layout.with_name(layout.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="ferry-image-") as tmp:
        script = Path(tmp) / "setup.sh"
        script.write_text(setup_script(recipe))
        rootfs = Path(tmp) / "rootfs.tar"  # mmdebstrap picks its output format by the name
        _run(mmdebstrap_argv(recipe, str(script), str(rootfs)), BUILD_TIMEOUT_S, recipe.ref)
        oci.write_layout(
            partial,
            rootfs,
            recipe.image_config(),
            ref_name=recipe.tag,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            architecture=oci.oci_architecture(_debian_arch()),
            created_by=f"ferry lab images: mmdebstrap {recipe.recipe_hash()}",
        )
    os.replace(partial, layout)
    elapsed = time.monotonic() - started
    say(f"built {recipe.ref} in {elapsed:.0f}s")
    return BuiltImage(recipe, layout, elapsed)


def fill_store(store: Path, images: Sequence[BuiltImage], say: Say = print) -> None:
    """Push every image into a new registry snapshot at ``store``, through a registry on
    loopback serving the snapshot's partial directory; renamed into place once complete."""
    partial = store.with_name(store.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    port = _free_loopback_port()
    config = partial.with_name(partial.name + ".yml")
    doc = registry_config(partial, f"127.0.0.1:{port}", service="ferry-lab-images")
    config.write_text(json.dumps(doc, indent=2) + "\n")
    log = partial.with_name(partial.name + ".log")
    ref = proc.spawn([REGISTRY_BINARY, "serve", str(config)], env=_env(), log_path=log)
    try:
        wait_listening(ref, port, log)
        for image in images:
            target = f"docker://127.0.0.1:{port}/{image.recipe.ref}"
            say(f"pushing {image.recipe.ref} into the lab registry store")
            _run(
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    f"oci:{image.layout}:{image.recipe.tag}",
                    target,
                ],
                PUSH_TIMEOUT_S,
                image.recipe.ref,
            )
    finally:
        proc.signal_process(ref, signal.SIGTERM)
        _wait_gone(ref)
        config.unlink(missing_ok=True)
    contents = {image.recipe.ref: image.recipe.recipe_hash() for image in images}
    (partial / CONTENTS_FILE).write_text(json.dumps(contents, indent=2, sort_keys=True) + "\n")
    os.replace(partial, store)
    log.unlink(missing_ok=True)


def store_contents(store: Path) -> dict[str, str]:
    """What a registry snapshot holds: reference → recipe hash (empty for the empty store)."""
    try:
        contents: dict[str, str] = json.loads((store / CONTENTS_FILE).read_text())
    except FileNotFoundError:
        return {}
    return contents


def _wait_gone(ref: proc.ProcRef) -> None:
    deadline = time.monotonic() + 10.0
    while ref.alive() and time.monotonic() < deadline:
        proc.reap_exited(ref)
        time.sleep(0.02)
    if ref.alive():
        proc.signal_process(ref, signal.SIGKILL)
    proc.reap_exited(ref)


def _run(argv: list[str], timeout_s: float, what: str) -> None:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, env=_env(), check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{what}: {argv[0]} took longer than {timeout_s:.0f}s") from exc
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-4:])
        raise Unavailable(f"{what}: {argv[0]} failed (exit {result.returncode}): {tail}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return env


def _debian_arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _free_loopback_port() -> int:
    """A TCP port free on loopback now (the kernel's pick); the registry binds it next."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
