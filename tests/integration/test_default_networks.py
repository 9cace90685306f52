"""Docker's default networks on a real lab host: ``bridge`` (the default of run, and of a
service without --network, masqueraded out; in a lab "out" is the underlay, never beyond),
``host`` (the host's own namespace) and ``none`` (only lo)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.lablib import FERRY, TOOLS, LabRig, new_lab, wait_until


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1, clients=1) as rig:
        server = subprocess.Popen(
            [FERRY, "lab", "exec", "--name", rig.name, "c1", "--", "python3", "-m",
             "http.server", "8000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield rig
        finally:
            server.kill()
            server.wait()


def client_url(lab: LabRig) -> str:
    return f"http://{lab.topo.node('c1').addr}:8000/"


def fetch(lab: LabRig, *run_args: str, client: str = "ferry") -> str:
    argv = [client, "run", "--rm", *run_args, TOOLS, "curl", "-s", "-m", "5", "-o", "/dev/null",
            "-w", "%{http_code}", client_url(lab)]  # fmt: skip
    return lab.exec("h1", *argv, check=False).stdout


def test_network_ls_lists_the_three_predefined_networks(lab: LabRig) -> None:
    listed = {n["Name"]: n["Driver"] for n in lab.api("h1", "/networks")}
    assert listed["bridge"] == "bridge" and listed["host"] == "host" and listed["none"] == "null"
    for name in ("bridge", "host", "none"):
        refused = lab.ferry("h1", "network", "rm", name, check=False)
        assert refused.returncode != 0 and "pre-defined" in refused.stderr


def test_run_without_network_reaches_a_lab_client_through_the_default_bridge(lab: LabRig) -> None:
    wait_until(lambda: fetch(lab) == "200", 20, "the client's web server, from the bridge")
    assert fetch(lab, client="docker") == "200"
    routes = lab.ferry("h1", "run", "--rm", TOOLS, "ip", "route").stdout
    bridge = lab.api("h1", "/networks/bridge")["IPAM"]["Config"][0]
    assert f"default via {bridge['Gateway']}" in routes
    inspect = lab.ferry("h1", "run", "-d", "--name", "onbridge", TOOLS, "sleep", "60")
    assert inspect.returncode == 0
    info = lab.api("h1", "/containers/onbridge/json")
    assert list(info["NetworkSettings"]["Networks"]) == ["bridge"]
    lab.ferry("h1", "rm", "-f", "onbridge")


def test_host_and_none(lab: LabRig) -> None:
    host_addrs = lab.ferry("h1", "run", "--rm", "--network", "host", TOOLS, "ip", "-4", "-o",
                           "addr").stdout  # fmt: skip
    assert lab.topo.node("h1").addr in host_addrs
    assert fetch(lab, "--network", "host") == "200"
    links = lab.ferry("h1", "run", "--rm", "--network", "none", TOOLS, "ip", "-o", "link").stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    assert fetch(lab, "--network", "none") == "000"
    mixed = lab.ferry("h1", "run", "--rm", "--network", "host", "-p", "80:80", TOOLS, "true",
                      check=False)  # fmt: skip
    assert mixed.returncode != 0 and "host network" in mixed.stderr


def test_a_service_without_network_gets_egress_as_in_docker(lab: LabRig) -> None:
    lab.ferry("h1", "swarm", "init", "--advertise-addr", lab.topo.node("h1").addr)
    script = f"curl -s -o /dev/null -w 'code=%{{http_code}}\\n' {client_url(lab)}; sleep 600"
    lab.ferry("h1", "service", "create", "-d", "--name", "egress", TOOLS, "sh", "-c", script)
    try:
        logs = wait_until(
            lambda: "code=" in (out := lab.ferry("h1", "service", "logs", "egress").stdout)
            and out,
            60, "the task's curl",
        )  # fmt: skip
        assert "code=200" in logs
    finally:
        lab.ferry("h1", "service", "rm", "egress", check=False)
