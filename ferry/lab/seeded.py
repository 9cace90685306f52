"""Images a lab's hosts start with, imported once per machine instead of once per host.

Importing the ``tools`` image (a 212 MB root filesystem tarball) costs a ferryd about 4 s of
CPU, and a test run makes some ninety lab hosts. So the tarball is imported once, by Ferry's
own image store code (``ImageStore.import_tar``, what ``ferry image import`` runs), into a
store of its own; each host's image store then starts as hard links to that one, made before
its ferryd starts — as a host provisioned from a disk image would have it.

Sharing inodes is safe because nothing in an image store is changed in place: files are
written to a temporary name and renamed, and layers are read-only overlay lower directories.
A host that adds or removes images replaces or unlinks only its own links.

Cache: ``<CACHE>/seeds/<key>/images`` (``CACHE`` as ``ferry lab images`` keeps it), where the
key covers the tarball (its path and size and modification time), the tag, and the image
store's code: a store written by other code is never reused. Built under the cache's lock
and renamed into place whole, so two test workers build it once.

Old seeds (another tarball, older code) go when a new one is built, once unused for a day
(each use touches its directory); a host's links outlive the seed they came from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ferry.errors import Conflict, KernelError
from ferry.kernel import filelock
from ferry.lab.images import CACHE

UNUSED_S = 24 * 3600.0
# the code that decides what an image store holds on disk
_STORE_CODE = ("images.py", "layers.py", "archive.py", "image_archive.py", "manifests.py")


def _key(tar: Path, tag: str) -> str:
    digest = hashlib.sha256()
    stat = tar.stat()
    digest.update(f"{tar.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{tag}\0".encode())
    runtime = Path(__file__).resolve().parent.parent / "runtime"
    for name in _STORE_CODE:
        digest.update((runtime / name).read_bytes())
    return digest.hexdigest()[:16]


def seed_store(tar: Path, tag: str, cache: Path = CACHE) -> Path:
    """An image store holding ``tar`` imported as ``tag``, made on first use. Raises
    ``NotFound`` (no such file) or ``InvalidArgument`` (not an image) as ``ferry image import``
    does."""
    from ferry.runtime.images import ImageStore

    seeds = cache / "seeds"
    seed = seeds / _key(tar, tag) / "images"
    if (seed / "tags.json").is_file():
        os.utime(seed.parent)
        return seed
    seeds.mkdir(parents=True, exist_ok=True)
    with filelock.exclusive(seeds / ".lock"):
        if (seed / "tags.json").is_file():
            return seed
        _remove_unused(seeds)
        with tempfile.TemporaryDirectory(prefix=".seed-", dir=seeds) as tmp:
            store = ImageStore(Path(tmp) / "images")
            store.import_tar(tar, tag)
            seed.parent.mkdir(exist_ok=True)
            (Path(tmp) / "images").rename(seed)
    return seed


def _remove_unused(seeds: Path, unused_s: float = UNUSED_S) -> None:
    """Seeds not used for ``unused_s`` (call it under the seeds' lock)."""
    for entry in seeds.iterdir():
        if entry.name.startswith("."):
            continue
        if time.time() - entry.stat().st_mtime > unused_s:
            shutil.rmtree(entry, ignore_errors=True)


def link_store(seed: Path, images_dir: Path) -> None:
    """``images_dir`` (which must not exist) as hard links to ``seed``'s files, directories
        made anew with their owners, modes, times and xattrs (``cp -al``); copied instead where
        the two are on different filesystems. Raises ``Conflict`` when ``images_dir`` exists,
    ``KernelError`` when neither works."""
    if images_dir.exists():
        raise Conflict(f"{images_dir} exists: a host's image store is seeded only when made")
    images_dir.parent.mkdir(parents=True, exist_ok=True)
    for flags in ("-al", "-a"):
        result = subprocess.run(
            ["cp", flags, "--", str(seed), str(images_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return
        shutil.rmtree(images_dir, ignore_errors=True)
        if "cross-device" not in result.stderr:
            break
    raise KernelError("cp", str(images_dir), None, result.stderr.strip())
