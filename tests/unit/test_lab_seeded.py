"""Lab hosts start with an image store linked from one imported once (``ferry.lab.seeded``):
each host sees the image, and a host's changes never reach another's store."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ferry.errors import Conflict
from ferry.lab import seeded
from ferry.runtime.images import ImageStore

pytestmark = pytest.mark.usefixtures("as_root")


def _rootfs(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in (("bin/tool", b"#!/bin/sh\n"), ("etc/hostname", b"seed\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def test_hosts_linked_from_one_seed_each_see_the_image_and_keep_their_changes(
    tmp_path: Path,
) -> None:
    tar = _rootfs(tmp_path / "rootfs.tar")
    seed = seeded.seed_store(tar, "tools", cache=tmp_path / "cache")
    assert seeded.seed_store(tar, "tools", cache=tmp_path / "cache") == seed  # made once
    hosts = [tmp_path / h / "state" / "images" for h in ("h1", "h2")]
    for images in hosts:
        seeded.link_store(seed, images)
    one, two = (ImageStore(images) for images in hosts)
    assert one.get("tools").image_id == two.get("tools").image_id
    layer = next((hosts[0] / "layers").iterdir()) / "diff" / "etc" / "hostname"
    assert layer.read_bytes() == b"seed\n"
    assert os.stat(layer).st_nlink == 3  # the seed's file, linked, not copied
    one.remove("tools", users=[])
    assert not (hosts[0] / "layers").exists() or not any((hosts[0] / "layers").iterdir())
    assert two.get("tools").image_id  # the other host's store is whole
    assert layer.exists() is False
    assert (next((hosts[1] / "layers").iterdir()) / "diff" / "etc" / "hostname").read_bytes()


def test_another_tag_or_tarball_is_another_seed_and_old_ones_go(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = seeded.seed_store(_rootfs(tmp_path / "a.tar"), "tools", cache=cache)
    old = first.parent
    os.utime(old, (0, 0))  # unused for long
    second = seeded.seed_store(_rootfs(tmp_path / "a.tar"), "other", cache=cache)
    assert second != first
    assert not old.exists()


def test_linking_into_an_existing_directory_is_refused(tmp_path: Path) -> None:
    seed = seeded.seed_store(_rootfs(tmp_path / "a.tar"), "tools", cache=tmp_path / "cache")
    images = tmp_path / "h1" / "images"
    images.mkdir(parents=True)
    with pytest.raises(Conflict, match="images exists"):
        seeded.link_store(seed, images)
