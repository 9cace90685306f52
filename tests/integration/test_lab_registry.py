"""The registry every lab runs: the tutorial images served to the hosts from the machine's
cache, pushes kept in the lab's own layer, every ferryd pointed at it, gone with the lab.

Needs the images built (``ferry lab images``; make test runs it first)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.kernel import mounts, proc
from ferry.lab import images, registry
from ferry.lab import lab as labmod
from ferry.lab.recipes import RECIPES
from tests.integration.lablib import LabRig, new_lab


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    if not images.store_contents(images.current_store()):
        pytest.fail("the lab images are not built: run 'ferry lab images' (make test does)")
    with new_lab(hosts=2, tools=False) as rig:
        yield rig


def _skopeo(lab: LabRig, host: str, *args: str) -> str:
    return lab.exec(host, "skopeo", *args).stdout


def test_every_ferryd_takes_the_lab_registry_as_docker_hubs_mirror(lab: LabRig) -> None:
    address = lab.topo.registry_address
    for host in lab.topo.hosts:
        path = labmod.daemon_json_path(host)
        assert json.loads(path.read_text()) == {
            "data-root": str(host.state_dir),
            "hosts": [f"unix://{host.socket}"],
            "registry-mirrors": [f"http://{address}"],
            "insecure-registries": [address],
        }
        pid = labmod.ferryd_pid(host)  # the file is what that ferryd was started with
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"--config-file") + 1] == str(path).encode()
        registries = lab.api(host.name, "/info")["RegistryConfig"]  # what the ferryd took
        assert registries["Mirrors"] == [f"http://{address}"]
        assert registries["IndexConfigs"][address]["Secure"] is False


def test_a_host_finds_every_tutorial_image_with_its_config_in_the_lab_registry(
    lab: LabRig,
) -> None:
    address = lab.topo.registry_address
    for recipe in RECIPES:
        ref = f"docker://{address}/{recipe.ref}"
        config = json.loads(_skopeo(lab, "h1", "inspect", "--tls-verify=false", "--config", ref))
        assert config["config"] == recipe.image_config(), recipe.ref
        assert config["os"] == "linux"
    nginx = json.loads(
        _skopeo(lab, "h2", "inspect", "--tls-verify=false", f"docker://{address}/library/nginx")
    )
    assert nginx["Labels"]["io.ferry.lab.debian.packages"] == "nginx-light"


def test_a_push_stays_in_the_labs_own_layer_and_the_cache_is_unchanged(lab: LabRig) -> None:
    address = lab.topo.registry_address
    store = images.current_store()
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    _skopeo(
        lab,
        "h1",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{address}/library/alpine:latest",
        f"docker://{address}/pushed/alpine:v1",
    )
    tags = json.loads(
        _skopeo(lab, "h2", "list-tags", "--tls-verify=false", f"docker://{address}/pushed/alpine")
    )
    assert tags["Tags"] == ["v1"]
    upper = lab.topo.registry.run_dir / "upper"
    assert list(upper.rglob("repositories/pushed/alpine"))
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before


def test_a_killed_registry_starts_again_with_what_was_pushed(lab: LabRig) -> None:
    address = lab.topo.registry_address
    pushed = f"docker://{address}/pushed/alpine"
    _skopeo(lab, "h1", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
            f"docker://{address}/library/alpine:latest", f"{pushed}:v2")  # fmt: skip
    stopped = lab.ferry("h1", "lab", "stop", "--name", lab.name, "--kill", "registry")
    assert stopped.stdout == "the lab's registry stopped\n"
    assert registry.registry_pid(lab.topo) is None
    status = lab.ferry("h1", "lab", "ls", "--name", lab.name).stdout
    assert "registry stopped" in status
    again = lab.ferry("h1", "lab", "start", "--name", lab.name, "registry", check=False)
    assert again.stdout == "the lab's registry started\n", again.stderr
    twice = lab.ferry("h1", "lab", "start", "--name", lab.name, "registry", check=False)
    assert twice.returncode != 0
    assert twice.stderr.strip() == "Error: the lab's registry is already running"
    tags = json.loads(_skopeo(lab, "h2", "list-tags", "--tls-verify=false", pushed))
    assert "v2" in tags["Tags"]
    storage = str(lab.topo.registry.run_dir / "storage")
    with open("/proc/self/mountinfo") as mountinfo:  # mounted once, not again on the start
        assert [line.split()[4] for line in mountinfo].count(storage) == 1


def test_lab_down_stops_the_registry_and_unmounts_its_storage() -> None:
    with new_lab(hosts=1, tools=False) as rig:
        topo = rig.topo
        pid = registry.registry_pid(topo)
        assert pid is not None
        start = proc.start_time_of(pid)
        assert start is not None
        storage = topo.registry.run_dir / "storage"
        assert mounts.is_mounted(storage)
    assert not proc.ProcRef(pid, start).alive()
    assert not mounts.is_mounted(storage)
    assert not topo.lab_dir.exists()
