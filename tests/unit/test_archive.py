"""The hostile-archive corpus against the extractor, as root in a temporary directory: every
case gets its answer, and nothing outside the root changes — not the sentinel directory the
archives aim at, not a byte, a mode, a time or a link count."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import itertools
import lzma
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from ferry.errors import InvalidArgument
from ferry.kernel import mounts
from ferry.kernel.inroot import clean, remove_tree
from ferry.runtime.archive import Unpack, extract_layer
from ferry.runtime.images import Image, ImageStore
from tests.unit.hostile_archives import (
    CASES,
    SENTINEL_FILES,
    Case,
    Entry,
    Want,
    directory,
    file,
    layer_tar,
    saved_image,
    symlink,
)

HOST_FILES = ("/etc/shadow", "/etc/passwd")


pytestmark = pytest.mark.usefixtures("as_root")


@pytest.fixture(autouse=True)
def _no_deep_leftovers(tmp_path: Path) -> Iterator[None]:
    """Some trees here are deeper than pytest's own clean-up (shutil.rmtree) can remove."""
    yield
    for child in tmp_path.iterdir():
        remove_tree(child)


class World:
    """A root to unpack into and, beside it, the sentinel the archives aim at."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.root = top / "root"
        self.root.mkdir(parents=True)
        self.sentinel = top / "sentinel"
        for name, data in SENTINEL_FILES.items():
            (self.sentinel / name).parent.mkdir(parents=True, exist_ok=True)
            (self.sentinel / name).write_bytes(data)
        self.fill = {"S": str(self.sentinel), "R": "../sentinel"}
        self.before = self.outside()

    def layers(self, case: Case) -> list[bytes]:
        return [layer_tar(layer, **self.fill) for layer in case.layers]

    def outside(self) -> dict[str, tuple[object, ...]]:
        """Everything outside the root, as lstat sees it, with contents and link targets."""
        seen: dict[str, tuple[object, ...]] = {}
        for path in [*_walk(self.top, skip=self.root), *map(Path, HOST_FILES)]:
            if not os.path.lexists(path):
                continue
            st = os.lstat(path)
            body: object = None
            if stat.S_ISREG(st.st_mode):
                body = path.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            seen[str(path)] = (st.st_mode, st.st_uid, st.st_nlink, st.st_mtime_ns, st.st_ino, body)
        return seen

    def check(self, path: str, want: Want, root: Path | None = None) -> None:
        root = root or self.root
        rel = clean(path.format(**self.fill))
        where = root / rel
        st = os.lstat(where) if os.path.lexists(where) else None
        if want.kind is None:
            assert st is None, f"{rel} should be gone"
            return
        assert st is not None, f"{rel} is missing"
        assert _kind(st.st_mode) == want.kind, f"{rel} is a {_kind(st.st_mode)}"
        if want.data is not None:
            assert where.read_bytes() == want.data
        if want.link is not None:
            assert os.readlink(where) == want.link.format(**self.fill)
        if want.mode is not None:
            assert stat.S_IMODE(st.st_mode) == want.mode, f"{rel}: {oct(st.st_mode)}"
        if want.owner is not None:
            assert (st.st_uid, st.st_gid) == want.owner
        if want.dev is not None:
            assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == want.dev
        for key, value in want.xattrs:
            assert os.getxattr(where, key, follow_symlinks=False) == value, key
        if want.same_inode_as is not None:
            assert st.st_ino == os.lstat(root / want.same_inode_as).st_ino


def _walk(top: Path, skip: Path) -> list[Path]:
    """``top`` and everything below it but ``skip``'s tree, without following symlinks and
    without recursion (pathlib's rglob recurses, and some cases are 1500 deep)."""
    found, pending = [top], [top]
    while pending:
        with os.scandir(pending.pop()) as entries:
            listed = list(entries)
        for entry in listed:
            path = Path(entry.path)
            if path == skip:
                continue
            found.append(path)
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
    return found


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISFIFO, "fifo"),
    ):
        if test(mode):
            return name
    return "other"


def _apply(world: World, layers: list[bytes]) -> None:
    for i, data in enumerate(layers):
        extract_layer(io.BytesIO(data), world.root, f"layer{i}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_layer_gets_its_answer_and_nothing_outside_changes(
    case: Case, tmp_path: Path
) -> None:
    world = World(tmp_path / "world")
    if case.refused is not None:
        with pytest.raises(InvalidArgument, match=case.refused):
            _apply(world, world.layers(case))
    else:
        _apply(world, world.layers(case))
        for path, want in case.inside.items():
            world.check(path, want)
    assert world.outside() == world.before


MULTI = [c for c in CASES if len(c.layers) > 1]


@pytest.mark.parametrize("case", MULTI, ids=[c.name for c in MULTI])
def test_in_every_layer_order_nothing_outside_changes(case: Case, tmp_path: Path) -> None:
    for n, order in enumerate(itertools.permutations(range(len(case.layers)))):
        world = World(tmp_path / str(n))
        layers = world.layers(case)
        with contextlib.suppress(InvalidArgument):  # refusing is a fine answer, escaping not
            _apply(world, [layers[i] for i in order])
        assert world.outside() == world.before, f"order {order}"


@contextlib.contextmanager
def merged(image: Image, scratch: Path) -> Iterator[Path]:
    """The image as a container sees it: its layers under an overlay mount (read through an
    empty upper directory of the test's own)."""
    for sub in ("upper", "work", "merged"):
        (scratch / sub).mkdir(parents=True)
    mounts.mount_overlay(image.layers, scratch / "upper", scratch / "work", scratch / "merged")
    try:
        yield scratch / "merged"
    finally:
        mounts.unmount(scratch / "merged")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_through_docker_save_import_the_answers_are_the_same(case: Case, tmp_path: Path) -> None:
    """Each layer is unpacked alone into its own directory (Docker's overlay2 does the same):
    a one-layer case gets the same answer as the extractor alone, seen through the overlay. A
    later layer never writes through an earlier layer's symlink (it is not there when the
    layer is unpacked): its entry lands in its own layer, which the overlay shows over the
    link, so the multi-layer cases' flat answers do not apply; for them, nothing outside
    changes, whatever the answer (layering is tested in test_images.py)."""
    world = World(tmp_path / "world")
    tarball = tmp_path / "saved.tar"
    tarball.write_bytes(saved_image(world.layers(case)))
    store = ImageStore(tmp_path / "images")
    if case.refused is not None and len(case.layers) == 1:
        with pytest.raises(InvalidArgument, match=case.refused):
            store.import_tar(tarball, "evil")
        assert store.all() == []
        assert not [p for p in (tmp_path / "images/layers").iterdir() if p.name[0] != "."]
    elif len(case.layers) > 1:
        with contextlib.suppress(InvalidArgument):
            store.import_tar(tarball, "evil")
    else:
        image = store.import_tar(tarball, "evil")
        assert [i.repo_tags for i in store.all()] == [("evil:latest",)]
        with merged(image, tmp_path / "mnt") as root:
            for path, want in case.inside.items():
                world.check(path, want, root)
    assert world.outside() == world.before


def test_the_manifest_order_decides_not_the_order_in_the_archive(tmp_path: Path) -> None:
    world = World(tmp_path / "world")
    first = layer_tar((file("f", b"from A"), symlink("s", "/a")), **world.fill)
    second = layer_tar((file("f", b"from B"), file("s", b"file")), **world.fill)
    tarball = tmp_path / "saved.tar"
    tarball.write_bytes(saved_image([second, first], order=[1, 0]))
    image = ImageStore(tmp_path / "images").import_tar(tarball, "ordered")
    with merged(image, tmp_path / "mnt") as root:
        assert (root / "f").read_bytes() == b"from B"
        assert (root / "s").read_bytes() == b"file"


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize(
    "compress",
    [gzip.compress, bz2.compress, lzma.compress, _zstd],
    ids=["gzip", "bzip2", "xz", "zstd"],
)
def test_compressed_layers_unpack_alike_and_stay_inside(compress: object, tmp_path: Path) -> None:
    world = World(tmp_path / "world")
    plant = layer_tar((symlink("escape", "{S}"), file("bin/sh", b"#!", mode=0o755)), **world.fill)
    write = layer_tar((file("escape/pwned"),), **world.fill)
    assert callable(compress)
    tarball = tmp_path / "saved.tar"
    tarball.write_bytes(saved_image([compress(plant), compress(write)]))
    image = ImageStore(tmp_path / "images").import_tar(tarball, "zipped")
    with merged(image, tmp_path / "mnt") as root:  # the later layer's directory hides the link
        assert (root / "escape/pwned").is_file() and (root / "bin/sh").read_bytes() == b"#!"
    extract_layer(io.BytesIO(compress(plant)), world.root, "plant")
    assert (world.root / "bin/sh").read_bytes() == b"#!"
    assert stat.S_IMODE(os.lstat(world.root / "bin/sh").st_mode) == 0o755
    assert world.outside() == world.before


def test_a_corrupt_compressed_layer_is_refused_as_such(tmp_path: Path) -> None:
    world = World(tmp_path / "world")
    data = gzip.compress(layer_tar((file("a", b"x" * 100_000),), **world.fill))
    with pytest.raises(InvalidArgument, match="not a valid tar archive"):
        extract_layer(io.BytesIO(data[: len(data) // 2]), world.root, "cut.tar.gz")
    with pytest.raises(InvalidArgument, match="not a valid tar archive"):
        extract_layer(io.BytesIO(b"\x1f\x8b" + b"garbage" * 100), world.root, "bad.tar.gz")


def test_docker_cp_shape_names_start_at_the_destination_and_symlinks_stay_inside(
    tmp_path: Path,
) -> None:
    world = World(tmp_path / "world")
    (world.root / "srv/app").mkdir(parents=True)
    (world.root / "etc").mkdir()
    (world.root / "srv/app/link").symlink_to("/etc")
    (world.root / "srv/app/away").symlink_to(world.fill["S"])
    how = Unpack(into="/srv/app/", layer=False, replace_dirs=False, owner=(0, 0))
    data = layer_tar(
        (
            directory("./", 0o700),
            file("../../../x", b"clamped"),
            file("link/y", b"through", uid=1000, gid=1000),
            file(".wh.kept", b"an ordinary file"),
        ),
        **world.fill,
    )
    extract_layer(io.BytesIO(data), world.root, "cp.tar", how)
    assert (world.root / "srv/app/x").read_bytes() == b"clamped"
    assert (world.root / "etc/y").read_bytes() == b"through"
    assert (os.lstat(world.root / "etc/y").st_uid, os.lstat(world.root / "etc/y").st_gid) == (0, 0)
    assert (world.root / "srv/app/.wh.kept").read_bytes() == b"an ordinary file"
    assert stat.S_IMODE(os.lstat(world.root / "srv/app").st_mode) == 0o755  # "./" skipped
    with pytest.raises(InvalidArgument, match="'away/z'"):
        extract_layer(io.BytesIO(layer_tar((file("away/z"),), **world.fill)), world.root, "cp", how)
    assert world.outside() == world.before


@pytest.mark.parametrize(
    ("first", "second"),
    [(file("x"), directory("x")), (directory("x"), file("x"))],
    ids=["a directory over a file", "a file over a directory"],
)
def test_without_replace_dirs_a_directory_and_a_file_never_replace_each_other(
    first: Entry, second: Entry, tmp_path: Path
) -> None:
    world = World(tmp_path / "world")
    how = Unpack(replace_dirs=False)
    extract_layer(io.BytesIO(layer_tar((first,), **world.fill)), world.root, "one", how)
    with pytest.raises(InvalidArgument, match="cannot replace a directory by a non-directory"):
        extract_layer(io.BytesIO(layer_tar((second,), **world.fill)), world.root, "two", how)
