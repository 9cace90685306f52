"""A container's Entrypoint and Cmd are kept apart and merged as Docker merges them, through
both CLIs on a lab host, down to what runc runs; ``-P`` publishes exposed ports on ephemeral
host ports. (The image-config side of the merge is in tests/unit/test_container_config.py:
this branch's image store keeps no image config yet.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ferry.model.imageconfig import EPHEMERAL_PORTS
from tests.integration.lablib import LabRig, new_lab


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        yield rig


def test_an_entrypoint_runs_with_the_command_as_its_arguments(lab: LabRig) -> None:
    out = lab.ferry("h1", "run", "--rm", "--entrypoint", "echo", "tools", "hello", "world")
    assert out.stdout == "hello world\n"
    out = lab.exec("h1", "docker", "run", "--rm", "--entrypoint", "echo", "tools", "via", "docker")
    assert out.stdout == "via docker\n"


def test_inspect_shows_dockers_config_path_and_args(lab: LabRig) -> None:
    lab.exec("h1", "docker", "create", "--name", "ep1", "--entrypoint", "/bin/echo", "tools",
             "a", "b")  # fmt: skip
    try:
        [got] = json.loads(lab.exec("h1", "docker", "inspect", "ep1").stdout)
    finally:
        lab.exec("h1", "docker", "rm", "ep1")
    assert (got["Path"], got["Args"]) == ("/bin/echo", ["a", "b"])
    assert (got["Config"]["Entrypoint"], got["Config"]["Cmd"]) == (["/bin/echo"], ["a", "b"])


def test_an_empty_entrypoint_and_no_command_is_dockers_refusal(lab: LabRig) -> None:
    out = lab.exec("h1", "docker", "run", "--rm", "--entrypoint", "", "tools", check=False)
    assert out.returncode != 0
    assert "No command specified" in out.stderr


def test_publish_all_puts_each_exposed_port_on_an_ephemeral_host_port(lab: LabRig) -> None:
    lab.exec("h1", "docker", "run", "-d", "--name", "pall", "-P", "--expose", "8080",
             "--expose", "53/udp", "tools", "sleep", "300")  # fmt: skip
    try:
        ports = lab.exec("h1", "docker", "port", "pall").stdout.splitlines()
    finally:
        lab.exec("h1", "docker", "rm", "-f", "pall")
    mapped = dict(line.split(" -> ") for line in ports)
    assert sorted(mapped) == ["53/udp", "8080/tcp"]
    low, high = EPHEMERAL_PORTS
    assert all(low <= int(addr.rsplit(":", 1)[1]) <= high for addr in mapped.values())
