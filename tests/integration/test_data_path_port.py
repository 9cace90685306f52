"""``swarm init --data-path-port``: a swarm whose VXLAN uses UDP 7789 (and 7790 inside
WireGuard for encrypted networks) on every node, shown where Docker shows it, kept across a
ferryd restart, never publishable; out-of-range ports refused in moby's words, and a joiner
whose daemon.json names another port refused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from ferry.lab import lab as labmod
from ferry.network.encryption import tunnel_ifname
from tests.integration.lablib import (
    TOOLS,
    LabRig,
    new_lab,
    restart_ferryd,
    sandbox_netns,
    underlay_capture,
    wait_until,
)

PORT = 7789


def docker(lab: LabRig, host: str, *args: str, check: bool = True) -> tuple[int, str, str]:
    """The docker CLI inside ``host``, against its ferryd."""
    result = lab.exec(host, "docker", "-H", lab.socket(host), *args, check=check)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    """h1 inits with --data-path-port 7789 (the docker CLI), h2 joins; h3 stays outside."""
    with new_lab(hosts=3) as rig:
        h1 = rig.topo.node("h1")
        docker(rig, "h1", "swarm", "init", "--advertise-addr", h1.addr,
               "--data-path-port", str(PORT))  # fmt: skip
        token = rig.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        rig.ferry("h2", "swarm", "join", "--token", token, f"{h1.addr}:2377")
        wait_until(
            lambda: {n["Status"]["State"] for n in rig.nodes().values()} == {"ready"},
            30, "h1 and h2 Ready",
        )  # fmt: skip
        for name, opts in (("blue", ()), ("vault", ("-o", "encrypted"))):
            rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", *opts, name)
            for host, suffix in (("h1", "1"), ("h2", "2")):
                rig.ferry(host, "run", "-d", "--network", name, "--name", f"{name}{suffix}",
                          TOOLS, "sleep", "3600")  # fmt: skip
        yield rig


def pings(lab: LabRig, host: str, container: str, target: str) -> bool:
    args = ("exec", container, "ping", "-c", "3", "-i", "0.2", "-W", "2", target)
    return " 0% packet loss" in lab.ferry(host, *args, check=False).stdout


def in_host(lab: LabRig, host: str, *cmd: str) -> str:
    return lab.exec(host, *cmd).stdout


def vxlan_dstport(lab: LabRig, host: str, network: str) -> int:
    """The UDP port of the VXLAN device in ``host``'s sandbox of ``network``."""
    netns = sandbox_netns(lab, host, str(lab.api("h1", f"/networks/{network}")["Id"]))
    out = subprocess.run(
        ["nsenter", f"--net={netns}", "ip", "-d", "-j", "link", "show", "vxlan0"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return int(json.loads(out)[0]["linkinfo"]["info_data"]["port"])


def test_the_swarm_shows_its_port_where_docker_shows_it(lab: LabRig) -> None:
    assert lab.api("h1", "/swarm")["DataPathPort"] == PORT
    assert lab.api("h1", "/info")["Swarm"]["Cluster"]["DataPathPort"] == PORT
    _, out, _ = docker(lab, "h1", "info")
    assert f" Data Path Port: {PORT}\n" in out
    assert f"{PORT}/udp ({PORT + 1}/udp inside WireGuard)" in lab.ferry("h1", "info").stdout


def test_overlay_traffic_crosses_the_underlay_on_the_swarms_port_only(lab: LabRig) -> None:
    wait_until(lambda: pings(lab, "h2", "blue2", "blue1"), 20, "blue2 on h2 to reach blue1")
    expression = "udp and not port 53"
    with underlay_capture(lab, expression) as lines:
        out = lab.ferry("h2", "exec", "blue2", "ping", "-c", "5", "-i", "0.2", "blue1").stdout
    assert " 0% packet loss" in out
    assert len(lines) >= 10, "the capture saw no overlay traffic"
    assert all(f".{PORT}:" in line or f".{PORT} " in line for line in lines), "\n".join(lines)
    assert not any(".4789" in line for line in lines)
    # the guard takes VXLAN on the swarm's pair from the nodes only, and keeps containers off
    guard = in_host(lab, "h2", "nft", "list", "table", "inet", "ferry_guard")
    assert f"udp dport {{ {PORT}, {PORT + 1} }} ip saddr != @nodes drop" in guard
    assert f"udp . {PORT}" in guard and f"udp . {PORT + 1}" in guard and "4789" not in guard


def test_an_encrypted_overlay_uses_the_next_port_inside_wireguard(lab: LabRig) -> None:
    wait_until(lambda: pings(lab, "h2", "vault2", "vault1"), 30, "vault2 on h2 to reach vault1")
    rules = in_host(lab, "h2", "ip", "rule")
    assert f"ipproto udp dport {PORT + 1} lookup 4790" in rules
    ruleset = in_host(lab, "h2", "nft", "list", "ruleset")
    device = tunnel_ifname(lab.topo.node("h2").netns_prefix)
    assert f'udp dport {PORT + 1} iifname != "{device}" drop' in ruleset


def test_a_ferryd_restart_keeps_the_swarms_port(lab: LabRig) -> None:
    restart_ferryd(lab, "h2")
    wait_until(lambda: pings(lab, "h2", "blue2", "blue1"), 30, "blue2 to reach blue1 again")
    guard = in_host(lab, "h2", "nft", "list", "table", "inet", "ferry_guard")
    assert f"udp dport {{ {PORT}, {PORT + 1} }}" in guard
    for name, port in (("blue", PORT), ("vault", PORT + 1)):
        assert vxlan_dstport(lab, "h2", name) == port
    membership = json.loads((lab.topo.node("h2").state_dir / "swarm.json").read_text())
    assert membership["data_path_port"] == PORT


def test_a_service_may_not_publish_the_swarms_port(lab: LabRig) -> None:
    for port in (PORT, PORT + 1):
        result = lab.ferry(
            "h1", "service", "create", "--name", f"p{port}",
            "--publish", f"published={port},target=80,protocol=udp", TOOLS, "sleep", "600",
            check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert f"port {port}/udp is reserved by Ferry" in result.stderr, result.stderr
    assert lab.api("h1", "/services") == []


def test_out_of_range_and_clashing_ports_are_refused(lab: LabRig) -> None:
    code, _, err = docker(lab, "h3", "swarm", "init", "--data-path-port", "80", check=False)
    assert code != 0
    assert "VXLAN UDP port number is not in valid range (1024-49151): 80" in err
    result = lab.ferry("h3", "swarm", "init", "--data-path-port", "2380", check=False)
    assert result.returncode != 0
    assert "data path port 2380 clashes with port 2380/tcp" in result.stderr
    assert lab.api("h3", "/info")["Swarm"]["LocalNodeState"] == "inactive"


def test_a_joiner_whose_daemon_json_names_another_port_is_refused(lab: LabRig) -> None:
    path = labmod.daemon_json_path(lab.topo.node("h3"))
    before = json.loads(path.read_text())
    path.write_text(json.dumps({**before, "data-path-port": 4789}))
    restart_ferryd(lab, "h3")
    token = lab.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
    result = lab.ferry(
        "h3", "swarm", "join", "--token", token, f"{lab.topo.node('h1').addr}:2377", check=False
    )
    assert result.returncode != 0
    assert (
        f"this swarm's data path port is {PORT}, but data-path-port in the daemon.json of h3 "
        f"is 4789: set it to {PORT} or remove it" in result.stderr
    ), result.stderr
    assert "h3" not in lab.nodes()
