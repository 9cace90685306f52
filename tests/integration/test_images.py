"""Importing hostile images on a lab host: a symlink planted by one layer cannot make a later
layer write outside the image, whether the archive comes through ``ferry image import`` or
through the docker CLI's ``docker import`` (POST /images/create). Each layer is unpacked alone
(as Docker's overlay2 does): the later layer's ``abs/pwned`` lands in its own directory
``abs``, which the container sees over the earlier layer's symlink."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.api.routes.images import host_platform
from tests.integration.lablib import TOOLS_TAR, LabRig, new_lab, wait_until
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


def test_docker_images_repo_lists_only_the_matching_tags_of_an_image(lab: LabRig) -> None:
    for tag in ("ia:1", "ib:2"):
        lab.exec("h1", "docker", "tag", "tools", tag)
    try:
        rows = lab.exec("h1", "docker", "images", "ia", "--format", "{{.Repository}}:{{.Tag}}")
        assert rows.stdout == "ia:1\n"
        table = lab.exec("h1", "docker", "images", "ib").stdout.splitlines()
        assert [line.split()[:2] for line in table] == [["REPOSITORY", "TAG"], ["ib", "2"]]
        assert lab.ferry("h1", "images", "ia", "--format", "{{.Tag}}").stdout == "1\n"
    finally:
        lab.exec("h1", "docker", "rmi", "ia:1", "ib:2")


def test_docker_rmi_f_untags_a_running_containers_image_which_keeps_running_on_it(
    lab: LabRig, tmp_path: Path
) -> None:
    """The image comes through docker import -c with HEALTHCHECK and ONBUILD, -m and this
    host's --platform, which the container runs with; rmi -f leaves it dangling under the
    container, as Docker does. A change or platform Ferry does not take is refused."""
    changes = ("HEALTHCHECK --interval=1s --retries=2 CMD true", "ONBUILD RUN make",
               'CMD ["sleep", "300"]')  # fmt: skip
    lab.exec("h1", "docker", "import", *(f"--change={c}" for c in changes), "-m", "pinned base",
             f"--platform={host_platform()}", str(TOOLS_TAR), "pin:1")  # fmt: skip
    history = lab.exec("h1", "docker", "history", "--format", "{{.Comment}}", "pin:1").stdout
    assert history == "pinned base\n"
    tiny = tmp_path / "tiny.tar"
    tiny.write_bytes(layer_tar((directory("etc"),), S="", R=""))
    for flag, said in (
        ("--change=EXPOSE 99999", "invalid containerPort: 99999"),
        ("--change=STOPSIGNAL SIGFOO", "invalid signal: SIGFOO"),
        ("--platform=linux/s390x", "platform 'linux/s390x' is not supported"),
    ):
        bad = lab.exec("h1", "docker", "import", flag, str(tiny), "bad:1", check=False)
        assert bad.returncode != 0 and f"Error response from daemon: {said}" in bad.stderr, flag
    image_id = lab.exec("h1", "docker", "inspect", "-f", "{{.Id}}", "pin:1").stdout.strip()
    config = lab.exec("h1", "docker", "inspect", "-f", "{{json .Config}}", "pin:1").stdout
    # (the docker CLI's Go struct leaves out the zero durations)
    assert json.loads(config)["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 10**9, "Retries": 2,
    }  # fmt: skip
    assert json.loads(config)["OnBuild"] == ["RUN make"]
    lab.exec("h1", "docker", "run", "-d", "--name", "pinned", "pin:1")
    try:
        refused = lab.exec("h1", "docker", "rmi", "pin:1", check=False)
        assert refused.returncode != 0
        assert 'unable to remove repository reference "pin:1" (must force)' in refused.stderr
        assert lab.exec("h1", "docker", "rmi", "-f", "pin:1").stdout == "Untagged: pin:1\n"
        dangling = lab.exec("h1", "docker", "images", "-q", "-f", "dangling=true").stdout
        assert image_id[7:19] in dangling.split()
        assert lab.exec("h1", "docker", "inspect", "-f", "{{.Image}} {{.Config.Image}}",
                        "pinned").stdout == f"{image_id} pin:1\n"  # fmt: skip
        ps = lab.exec("h1", "docker", "ps", "-f", "name=pinned", "--format", "{{.Image}}")
        assert ps.stdout == f"{image_id[7:19]}\n"
        by_id = lab.exec("h1", "docker", "rmi", "-f", image_id[7:19], check=False)
        assert by_id.returncode != 0 and "(cannot be forced) - image is being used by running" \
            in by_id.stderr  # fmt: skip
        lab.exec("h1", "docker", "restart", "-t", "1", "pinned")

        def healthy() -> bool:
            state = lab.exec("h1", "docker", "inspect", "-f", "{{.State.Health.Status}}",
                             "pinned").stdout  # fmt: skip
            return state.strip() == "healthy"

        wait_until(healthy, 30, "the restarted container's imported HEALTHCHECK to pass")
    finally:
        lab.exec("h1", "docker", "rm", "-f", "pinned")
    pruned = lab.exec("h1", "docker", "image", "prune", "-f").stdout
    assert f"deleted: {image_id}" in pruned


def test_docker_search_says_in_one_line_that_there_is_no_index(lab: LabRig) -> None:
    result = lab.exec("h1", "docker", "search", "nginx", check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "Error response from daemon: cannot search for 'nginx': Ferry has no image index to "
        "search (docker search asks Docker Hub's); name the image with its registry and pull it"
    )
