"""Image import: `docker save` layers applied in order, whiteouts honoured, never outside."""

import io
import json
import tarfile
from pathlib import Path

import pytest

from ferry.errors import InvalidArgument
from ferry.runtime.images import ImageStore


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
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    tarball = _saved_image(
        tmp_path / "evil.tar",
        [{"escape": str(outside)}, {"escape/.wh.precious": b""}],
    )
    with pytest.raises(InvalidArgument, match="outside the image"):
        ImageStore(tmp_path / "images").import_tar(tarball, "evil")
    assert (outside / "precious").read_bytes() == b"keep me"
    assert not (tmp_path / "images" / "evil@latest").exists()


def test_a_manifest_naming_a_layer_outside_the_tarball_is_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "bad.tar"
    manifest = json.dumps([{"Layers": ["../../etc/passwd"]}]).encode()
    with tarfile.open(tarball, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    with pytest.raises(InvalidArgument, match="refusing"):
        ImageStore(tmp_path / "images").import_tar(tarball, "bad")
