"""Importing hostile images on a lab host: a symlink planted by one layer cannot make a later
layer write outside the image, whether the archive comes through ``ferry image import`` or
through the docker CLI's ``docker import`` (POST /images/create). Each layer is unpacked alone
(as Docker's overlay2 does): the later layer's ``abs/pwned`` lands in its own directory
``abs``, which the container sees over the earlier layer's symlink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lablib import LabRig, new_lab
from tests.unit.hostile_archives import Entry, directory, file, layer_tar, saved_image, symlink


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        yield rig


def _busybox() -> tuple[Entry, ...]:
    tools = ("sh", "cat", "ls")
    return (
        file("bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755),
        *(symlink(f"bin/{tool}", "busybox") for tool in tools),
        *(directory(d) for d in ("etc", "proc", "dev", "sys", "tmp")),
    )


class Host:
    """Directories on the lab machine's own filesystem that the archives aim at."""

    def __init__(self, top: Path) -> None:
        self.shared = top / "shared"  # the image has a directory of the same path
        self.only = top / "only"  # the image does not
        for d in (self.shared, self.only):
            d.mkdir()
            (d / "precious").write_bytes(b"keep me")

    def untouched(self) -> bool:
        return all(
            sorted(p.name for p in d.iterdir()) == ["precious"]
            and (d / "precious").read_bytes() == b"keep me"
            for d in (self.shared, self.only)
        )


def _hostile_save(tmp_path: Path, host: Host, target: Path) -> Path:
    """docker save shape: layer 1 is busybox plus symlinks to the host directories (absolute
    and by ../), layer 2 writes through them."""
    dotdots = "../" * 12
    plant = (
        *_busybox(),
        directory(str(host.shared)),
        symlink("abs", str(target)),
        symlink("rel", dotdots + str(target).lstrip("/")),
    )
    write = (file("abs/pwned", b"inside the image\n"), file("rel/pwned2", b"also inside\n"))
    fill = {"S": "", "R": ""}
    tarball = tmp_path / f"hostile-{target.name}.tar"
    tarball.write_bytes(saved_image([layer_tar(plant, **fill), layer_tar(write, **fill)]))
    return tarball


def test_ferry_image_import_keeps_a_planted_symlinks_writes_inside_the_image(
    lab: LabRig, tmp_path: Path
) -> None:
    host = Host(tmp_path)
    for target, name in ((host.shared, "evil"), (host.only, "evil2")):
        lab.ferry("h1", "image", "import", str(_hostile_save(tmp_path, host, target)), name)
        try:
            assert host.untouched()
            out = lab.ferry("h1", "run", "--rm", name, "cat", "/abs/pwned", "/rel/pwned2")
            assert out.stdout == "inside the image\nalso inside\n"
            listed = lab.ferry("h1", "run", "--rm", name, "ls", str(host.shared))
            assert listed.stdout == ""  # the image's own directory of that path: empty
        finally:
            lab.ferry("h1", "image", "rm", name)
        assert host.untouched()


def test_docker_import_keeps_a_planted_symlinks_writes_inside_the_image(
    lab: LabRig, tmp_path: Path
) -> None:
    host = Host(tmp_path)
    tarball = _hostile_save(tmp_path, host, host.only)
    lab.exec("h1", "docker", "import", str(tarball), "devil:1")
    try:
        assert host.untouched()
        out = lab.exec("h1", "docker", "run", "--rm", "devil:1", "cat", "/abs/pwned")
        assert out.stdout == "inside the image\n"
    finally:
        lab.exec("h1", "docker", "rmi", "devil:1")
    assert host.untouched()
