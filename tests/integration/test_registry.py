"""Images through a real registry (Debian's docker-registry, the CNCF distribution server) on
a lab host's underlay address, driven by ferry and by the real docker CLI: push then pull on
a node that never had the image, pull on ``run``, save on one node and load on another, and
Docker's "No such image" for a name no registry has.

One lab of two hosts for the module; the registry runs in h1's namespace with its storage in
a temporary directory, and both ferryds take it as an insecure registry from their
daemon.json (the lab's ``--config-file``, Docker's keys), and as the mirror of Docker Hub.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.lab import lab as labmod
from tests.integration.lablib import (
    FERRY,
    TOOLS,
    TOOLS_TAR,
    LabRig,
    new_lab,
    restart_ferryd,
    wait_until,
)

PORT = 5000


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=2, tools=False) as rig:
        yield rig


@pytest.fixture(scope="module")
def registry(lab: LabRig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The registry's address (``host:port``), both ferryds configured to use it."""
    rig = lab
    registry = f"{rig.topo.node('h1').addr}:{PORT}"
    top = tmp_path_factory.mktemp("registry")
    config = top / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {top / 'data'}\nhttp:\n  addr: {registry}\n"
    )
    with (top / "log").open("wb") as log:
        server = subprocess.Popen(
            [FERRY, "lab", "exec", "--name", rig.name, "h1", "--",
             "docker-registry", "serve", str(config)],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: rig.exec("h2", "curl", "-sf", f"http://{registry}/v2/", check=False)
            .returncode == 0,
            timeout_s=30, what="the registry answers",
        )  # fmt: skip
        for host in ("h1", "h2"):
            path = labmod.daemon_json_path(rig.topo.node(host))
            daemon_json = json.loads(path.read_text())
            daemon_json["insecure-registries"] = [registry]
            daemon_json["registry-mirrors"] = [f"http://{registry}"]
            path.write_text(json.dumps(daemon_json))
            restart_ferryd(rig, host)
        yield registry
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def _image_id(lab: LabRig, host: str, ref: str) -> str:
    return str(lab.api(host, f"/images/{ref}/json")["Id"])


@pytest.fixture(scope="module")
def pushed(lab: LabRig, registry: str) -> str:
    """The tools image, imported on h1 only, tagged for the registry and pushed."""
    ref = f"{registry}/ferrylab/tools:latest"
    lab.ferry("h1", "image", "import", str(TOOLS_TAR), TOOLS)
    lab.ferry("h1", "tag", TOOLS, ref)
    out = lab.ferry("h1", "push", ref).stdout
    assert f"The push refers to repository [{ref.rsplit(':', 1)[0]}]" in out
    assert "latest: digest: sha256:" in out
    return ref


def test_a_pushed_image_is_pulled_on_a_node_that_never_had_it(lab: LabRig, pushed: str) -> None:
    assert "No such image" in lab.ferry("h2", "image", "inspect", pushed, check=False).stderr
    out = lab.ferry("h2", "pull", pushed).stdout.splitlines()
    assert out[0] == "latest: Pulling from ferrylab/tools"
    assert out[-3].startswith("Digest: sha256:")
    assert out[-2:] == [f"Status: Downloaded newer image for {pushed}", pushed]
    assert _image_id(lab, "h2", pushed) == _image_id(lab, "h1", pushed)
    digests = lab.api("h2", f"/images/{pushed}/json")["RepoDigests"]
    assert digests == [f"{pushed.rsplit(':', 1)[0]}@{out[-3].split()[1]}"]
    again = lab.ferry("h2", "pull", pushed).stdout
    assert f"Status: Image is up to date for {pushed}" in again
    ran = lab.ferry("h2", "run", "--rm", pushed, "cat", "/etc/debian_version")
    assert ran.stdout.strip()


def test_docker_run_pulls_a_missing_image_and_save_then_load_keeps_its_id(
    lab: LabRig, pushed: str, tmp_path: Path
) -> None:
    lab.exec("h2", "docker", "rmi", "-f", pushed, check=False)
    ran = lab.exec("h2", "docker", "run", "--rm", pushed, "echo", "hello")
    assert ran.stdout == "hello\n"
    assert f"Unable to find image '{pushed}' locally" in ran.stderr
    archive = tmp_path / "saved.tar"
    lab.exec("h2", "docker", "save", "-o", str(archive), pushed)
    lab.exec("h1", "docker", "rmi", "-f", pushed)
    loaded = lab.exec("h1", "docker", "load", "-i", str(archive))
    assert loaded.stdout == f"Loaded image: {pushed}\n"
    assert _image_id(lab, "h1", pushed) == _image_id(lab, "h2", pushed)
    inspected = json.loads(lab.exec("h1", "docker", "image", "inspect", pushed).stdout)[0]
    assert inspected["RootFS"]["Type"] == "layers" and inspected["Created"].endswith("Z")


def test_a_name_no_registry_has_is_no_such_image(lab: LabRig, registry: str) -> None:
    missing = f"{registry}/nosuch/thing:latest"
    pulled = lab.ferry("h2", "pull", missing, check=False)
    assert (pulled.returncode, pulled.stderr.strip()) == (3, f"Error: No such image: {missing}")
    docker = lab.exec("h2", "docker", "pull", missing, check=False)
    assert docker.returncode != 0
    assert f"Error response from daemon: No such image: {missing}" in docker.stderr


def test_login_keeps_the_credentials_private_and_distribution_gives_the_digest(
    lab: LabRig, registry: str, pushed: str
) -> None:
    login = subprocess.run(
        [FERRY, "login", "-u", "someone", "--password-stdin", registry], input="secret\n",
        env=dict(os.environ, FERRY_HOST=lab.socket("h2")), capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert login.stdout == "Login Succeeded\n"
    authfile = lab.topo.node("h2").state_dir / "registry-auth.json"
    assert authfile.stat().st_mode & 0o777 == 0o600
    assert registry in json.loads(authfile.read_text())["auths"]
    lab.ferry("h2", "logout", registry)
    assert registry not in json.loads(authfile.read_text())["auths"]
    info = lab.api("h2", f"/distribution/{pushed}/json")
    # the digest the registry gives (a pull prints it): h1's copy may have lost its digest
    # reference, as Docker's does when its last tag in that repository goes (an earlier test)
    pulled = lab.ferry("h2", "pull", pushed).stdout.splitlines()
    digest = next(line.split()[1] for line in pulled if line.startswith("Digest: "))
    assert info["Descriptor"]["digest"] == digest
    assert info["Platforms"] == [{"architecture": "amd64", "os": "linux"}]


def test_docker_hub_names_come_from_the_mirror(lab: LabRig, registry: str, pushed: str) -> None:
    """A mirror serves Docker Hub's names (``library/NAME``); a name it lacks is "No such
    image" (Docker Hub itself cannot be reached from the lab)."""
    lab.ferry("h1", "tag", pushed, f"{registry}/library/mirrored:latest")
    lab.ferry("h1", "push", f"{registry}/library/mirrored:latest")
    out = lab.exec("h2", "docker", "pull", "mirrored").stdout.splitlines()
    assert out[0] == "Using default tag: latest"
    assert out[1] == "latest: Pulling from library/mirrored"
    assert out[-2:] == ["Status: Downloaded newer image for mirrored:latest",
                        "docker.io/library/mirrored:latest"]  # fmt: skip
    assert _image_id(lab, "h2", "mirrored") == _image_id(lab, "h1", pushed)
    missing = lab.ferry("h2", "pull", "nosuchthing", check=False)
    assert (missing.returncode, missing.stderr.strip()) == (
        3,
        "Error: No such image: nosuchthing:latest",
    )
