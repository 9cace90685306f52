"""Image import: `docker save` layers applied in order, whiteouts honoured, never outside."""

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.errors import InvalidArgument
from ferry.kernel.inroot import remove_tree
from ferry.runtime.images import ImageStore, normalise

pytestmark = pytest.mark.usefixtures("as_root")


@pytest.fixture(autouse=True)
def _no_deep_leftovers(tmp_path: Path) -> Iterator[None]:
    """Some trees here are deeper than pytest's own clean-up (shutil.rmtree) can remove."""
    yield
    for child in tmp_path.iterdir():
        remove_tree(child)


def _layer(entries: dict[str, bytes | str | None]) -> bytes:
    """A layer tarball: bytes are files, str are symlink targets, None are directories."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _saved_image(path: Path, layers: list[dict[str, bytes | str | None]]) -> Path:
    """A tarball shaped like the output of `docker save`."""
    names = [f"layer{i}/layer.tar" for i in range(len(layers))]
    files = {name: _layer(layer) for name, layer in zip(names, layers, strict=True)}
    files["manifest.json"] = json.dumps([{"Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_layers_apply_in_order_with_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    tarball = _saved_image(
        tmp_path / "img.tar",
        [
            {"etc": None, "etc/keep": b"1", "etc/gone": b"2", "var": None, "var/old": b"3"},
            {"etc/.wh.gone": b"", "var/.wh..wh..opq": b"", "var/new": b"4", "etc/keep": b"5"},
        ],
    )
    image = ImageStore(tmp_path / "images").import_tar(tarball, "demo")
    assert image.rootfs is not None
    rootfs = image.rootfs
    assert (rootfs / "etc/keep").read_bytes() == b"5"
    assert not (rootfs / "etc/gone").exists()
    assert sorted(p.name for p in (rootfs / "var").iterdir()) == ["new"]
    assert not list(rootfs.rglob(".wh.*"))


def test_a_whiteout_through_a_planted_symlink_deletes_nothing_outside(tmp_path: Path) -> None:
    """As in Docker (which unpacks in a chroot of the layer), the symlink resolves inside the
    image: the whiteout names the image's own /…/host/precious, which does not exist."""
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    tarball = _saved_image(
        tmp_path / "evil.tar",
        [{"escape": str(outside)}, {"escape/.wh.precious": b""}],
    )
    image = ImageStore(tmp_path / "images").import_tar(tarball, "evil")
    assert (outside / "precious").read_bytes() == b"keep me"
    assert image.rootfs is not None
    assert os.readlink(image.rootfs / "escape") == str(outside)


def test_a_manifest_naming_a_layer_outside_the_tarball_is_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "bad.tar"
    manifest = json.dumps([{"Layers": ["../../etc/passwd"]}]).encode()
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    with pytest.raises(InvalidArgument, match="refusing"):
        ImageStore(tmp_path / "images").import_tar(tarball, "bad")


def _manifest_only(path: Path, manifest: object, members: dict[str, bytes] | None = None) -> Path:
    files = {"manifest.json": json.dumps(manifest).encode(), **(members or {})}
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("manifest", "members", "refusal"),
    [
        ([{"Layers": ["/etc/passwd"]}], {}, "refusing the layer path '/etc/passwd'"),
        ([{"Layers": ["a/./b.tar"]}], {}, "refusing the layer path"),
        ([{"Layers": ["gone/layer.tar"]}], {}, "layer gone/layer.tar is not in the archive"),
        ([{"Layers": ["d"]}, {"Layers": ["d"]}], {"d": b""}, "holds 2 images"),
        ({"Layers": []}, {}, "holds 0 images"),
        ([{"Layers": "x"}], {}, "Layers is not a list of paths"),
        ([{"NoLayers": []}], {}, "not a docker save manifest"),
    ],
    ids=[
        "an absolute layer path",
        "a layer path that is not clean",
        "a layer the archive lacks",
        "two images in one archive",
        "a manifest that is not a list",
        "layers that are not a list",
        "a manifest without layers",
    ],
)
def test_a_bad_docker_save_manifest_is_refused(
    tmp_path: Path, manifest: object, members: dict[str, bytes], refusal: str
) -> None:
    tarball = _manifest_only(tmp_path / "bad.tar", manifest, members)
    with pytest.raises(InvalidArgument, match=refusal):
        ImageStore(tmp_path / "images").import_tar(tarball, "bad")


def test_a_layer_stored_as_a_link_inside_the_archive_is_read_from_the_archive(
    tmp_path: Path,
) -> None:
    """docker save stores an identical layer once and links the others to it."""
    layer = _layer({"f": b"shared"})
    tarball = tmp_path / "img.tar"
    with tarfile.open(tarball, "w") as tar:
        manifest = json.dumps([{"Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()
        for name, data in {"a/layer.tar": layer, "manifest.json": manifest}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("b/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../a/layer.tar"
        tar.addfile(link)
    image = ImageStore(tmp_path / "images").import_tar(tarball, "linked")
    assert image.rootfs is not None
    assert (image.rootfs / "f").read_bytes() == b"shared"


def test_a_plain_root_filesystem_is_one_layer_with_whiteouts_honoured(tmp_path: Path) -> None:
    tarball = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, content in {"bin": None, "bin/sh": b"#!", ".wh.gone": b""}.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    image = ImageStore(tmp_path / "images").import_tar(tarball, "plain")
    assert image.rootfs is not None
    assert sorted(os.listdir(image.rootfs)) == ["bin"]
    assert (image.rootfs / "bin/sh").read_bytes() == b"#!"


def test_not_a_tarball_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 100)
    with pytest.raises(InvalidArgument, match=r"junk\.tar: not a valid tar archive"):
        ImageStore(tmp_path / "images").import_tar(junk, "junk")
    assert os.listdir(tmp_path / "images") == []


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a" * 255, True),
        ("a" * 256, False),
        ("a:" + "t" * 128, True),
        ("a:" + "t" * 129, False),
        ("a:.hidden", False),
        ("a:-dash", False),
    ],
    ids=["255 characters", "256", "a tag of 128", "129", "a tag from a dot", "from a dash"],
)
def test_image_names_keep_dockers_limits(name: str, ok: bool) -> None:
    if ok:
        assert normalise(name).startswith("a")
    else:
        with pytest.raises(InvalidArgument):
            normalise(name)


def test_the_longest_names_still_make_one_file_name(tmp_path: Path) -> None:
    tarball = _saved_image(tmp_path / "img.tar", [{"f": b"1"}])
    store = ImageStore(tmp_path / "images")
    name = "r" * 255 + ":" + "t" * 128
    image = store.import_tar(tarball, name)
    assert image.name == name
    (directory,) = (tmp_path / "images").iterdir()
    assert len(directory.name) <= 255
    assert store.get(name).image_id == image.image_id


def test_an_image_with_a_tree_deeper_than_pythons_recursion_is_removed(tmp_path: Path) -> None:
    tarball = _saved_image(tmp_path / "deep.tar", [{"d/" + "a/" * 1500 + "f": b"deep"}])
    store = ImageStore(tmp_path / "images")
    image = store.import_tar(tarball, "deep")
    assert image.size_bytes == 4
    store.remove("deep", [])
    assert os.listdir(tmp_path / "images") == []
