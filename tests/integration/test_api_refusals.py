"""Issue 9's bad inputs through the real CLIs on a one-host swarm: each is refused up front,
in one line, with the exit code of its kind, and leaves nothing behind."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.integration.lablib import LabRig, new_lab

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        rig.ferry("h1", "swarm", "init", "--advertise-addr", rig.topo.node("h1").addr)
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "front")
        rig.ferry("h1", "service", "create", "-d", "--name", "web", "--network", "front",
                  "tools", "sleep", "600")  # fmt: skip
        yield rig


def _refused(lab: LabRig, code: int, message: str, *args: str) -> None:
    result = lab.ferry("h1", *args, check=False)
    assert result.returncode == code, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert message in lines[0], lines[0]


def test_bad_values_are_refused_in_one_line_by_the_ferry_cli(lab: LabRig) -> None:
    _refused(lab, 2, 'invalid environment variable: "=novalue"',
             "run", "-d", "-e", "=novalue", "tools", "sleep", "60")  # fmt: skip
    _refused(lab, 2, 'invalid environment variable: "=novalue"',
             "service", "create", "-d", "--name", "envy", "-e", "=novalue",
             "tools", "sleep", "60")  # fmt: skip
    _refused(lab, 2, "is too long (maximum 64 bytes)",
             "run", "-d", "--hostname", "h" * 300, "tools", "sleep", "60")  # fmt: skip
    _refused(lab, 2, "overlaps 127.0.0.0/8",
             "network", "create", "--subnet", "127.0.0.0/24", "lo-net")  # fmt: skip
    _refused(lab, 2, "overlaps 127.0.0.0/8",
             "network", "create", "-d", "overlay", "--subnet", "127.0.0.0/24",
             "lo-ovl")  # fmt: skip
    _refused(lab, 2, "value '=h1' is invalid",
             "service", "create", "-d", "--name", "placed", "--constraint", "node.hostname===h1",
             "tools", "sleep", "60")  # fmt: skip
    services = lab.api("h1", "/services")
    assert sorted(s["Spec"]["Name"] for s in services) == ["web"]
    names = {n["Name"] for n in lab.api("h1", "/networks")}
    assert not names & {"lo-net", "lo-ovl"}


def test_an_alias_that_would_shadow_a_service_is_refused(lab: LabRig) -> None:
    _refused(lab, 5, "name web belongs to service web",
             "run", "-d", "--name", "shadow", "--network", "front", "--network-alias", "web",
             "tools", "sleep", "60")  # fmt: skip
    result = lab.exec("h1", "docker", "run", "-d", "--name", "shadow2", "--network", "front",
                      "--network-alias", "tasks.web", "tools", "sleep", "60",
                      check=False)  # fmt: skip
    assert result.returncode != 0
    assert "name tasks.web belongs to service web" in result.stderr
    assert not [c for c in lab.api("h1", "/containers/json", all=1)
                if c["Names"][0] in ("/shadow", "/shadow2")]  # fmt: skip
    # on a network the service is not on, the managers refuse it too: a container on both
    # networks would answer for the service
    lab.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "back")
    _refused(lab, 5, "belongs to service web",
             "run", "-d", "--name", "aliased", "--network", "back", "--network-alias", "web",
             "tools", "sleep", "60")  # fmt: skip
    lab.ferry("h1", "rm", "-f", "aliased", check=False)
    # nor on this host's own networks, which its DNS serves too
    _refused(lab, 5, "name web belongs to service web",
             "run", "-d", "--name", "web", "tools", "sleep", "60")  # fmt: skip
    assert not [c for c in lab.api("h1", "/containers/json", all=1) if c["Names"][0] == "/web"]


def test_a_malformed_request_gets_a_400_and_no_traceback_in_the_log(lab: LabRig) -> None:
    node = lab.topo.node("h1")
    log = node.run_dir / "ferryd.log"
    start = log.stat().st_size
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(node.socket))
        sock.sendall(b"GET /info?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.split(b" ", 2)[1] == b"400"
    # a long but legal query (Docker's filters) is served
    assert lab.api("h1", "/networks", filters={"name": ["x" * 20_000]}) == []
    tail = log.read_bytes()[start:].decode(errors="replace")
    assert "malformed HTTP request refused" in tail
    assert "Traceback" not in tail


def test_the_docker_cli_hears_dockers_words(lab: LabRig) -> None:
    too_new = lab.exec("h1", "env", "DOCKER_API_VERSION=9.99", "docker", "info", check=False)
    assert too_new.returncode != 0
    assert "client version 9.99 is too new. Maximum supported API version is 1.47" in (
        too_new.stderr
    )
    killed = lab.exec("h1", "docker", "kill", "-s", "99", "nothing-here", check=False)
    assert killed.returncode != 0
    assert "the linux daemon does not support signal 99" in killed.stderr


def test_the_docker_clis_ordinary_requests_pass_the_stricter_parsing(lab: LabRig) -> None:
    def docker(*args: str) -> str:
        return lab.exec("h1", "docker", *args).stdout

    docker("service", "create", "-d", "--name", "dsvc", "--network", "front",
           "--constraint", "node.role==manager", "-e", "A=1", "tools", "sleep", "600")  # fmt: skip
    docker("service", "scale", "-d", "dsvc=2")
    docker("service", "update", "-d", "--force", "--label-add", "tier=front", "dsvc")
    assert "dsvc" in docker("service", "ls", "--filter", "label=tier=front")
    assert docker("service", "ps", "-q", "dsvc").strip()
    docker("node", "update", "--label-add", "zone=east", "self")
    assert docker("node", "ls", "--filter", "node.label=zone=east", "-q").strip()
    docker("run", "-d", "--name", "dctr", "--network", "front", "-e", "B", "-w", "/tmp",
           "--hostname", "d-ctr.local", "--label", "k=v", "tools", "sleep", "600")  # fmt: skip
    assert "dctr" in docker("ps", "-a", "--filter", "label=k=v", "--filter", "status=running")
    assert "front" in docker("network", "ls", "--filter", "driver=overlay")
    docker("logs", "--tail", "5", "dctr")
    docker("stop", "-t", "1", "-s", "SIGINT", "dctr")
    docker("start", "dctr")
    docker("kill", "-s", "HUP", "dctr")
    docker("rm", "-f", "dctr")
    docker("service", "rm", "dsvc")
