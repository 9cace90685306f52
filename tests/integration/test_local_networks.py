"""Local networks without a swarm: user-defined bridges and macvlan (seed 000's second half)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from ferry.kernel import nsfs
from ferry.lab import lab as labmod
from tests.integration.lablib import TOOLS, LabRig, new_lab, wait_until

HTTP = (TOOLS, "python3", "-m", "http.server", "80")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=2, clients=1) as rig:
        rig.ferry("h1", "network", "create", "front")  # bridge: Docker's default driver
        rig.ferry("h1", "network", "create", "back")
        rig.ferry("h1", "network", "create", "--internal", "sealed")
        rig.ferry("h1", "run", "-d", "--name", "web", "--network", "front", "-p", "8088:80", *HTTP)
        rig.ferry("h1", "run", "-d", "--name", "shell", "--network", "front", TOOLS, "sleep", "600")
        rig.ferry("h1", "run", "-d", "--name", "other", "--network", "back", TOOLS, "sleep", "600")
        rig.ferry(
            "h1", "run", "-d", "--name", "vault", "--network", "sealed", TOOLS, "sleep", "600"
        )
        yield rig


def host_ruleset(lab: LabRig, host: str) -> str:
    netns = nsfs.netns_path(f"{lab.name}-{host}")
    return subprocess.run(
        ["nsenter", f"--net={netns}", "nft", "list", "ruleset"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def address(lab: LabRig, host: str, container: str, network: str) -> str:
    info = lab.api(host, f"/containers/{container}/json")
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


def reaches(lab: LabRig, container: str, target: str) -> bool:
    ping = ("ping", "-c", "1", "-W", "1", target)
    return lab.ferry("h1", "exec", container, *ping, check=False).returncode == 0


def test_network_ls_and_inspect_show_local_bridges_with_their_containers(lab: LabRig) -> None:
    rows = [line.split() for line in lab.ferry("h1", "network", "ls").stdout.splitlines()[1:]]
    assert {(r[1], r[2], r[3]) for r in rows} >= {
        ("front", "bridge", "local"),
        ("back", "bridge", "local"),
        ("sealed", "bridge", "local"),
    }
    either = lab.ferry("h1", "network", "ls", "-f", "name=front", "-f", "name=back").stdout
    assert sorted(line.split()[1] for line in either.splitlines()[1:]) == ["back", "front"]
    front = lab.api("h1", "/networks/front")
    names = {c["Name"]: c["IPv4Address"] for c in front["Containers"].values()}
    assert set(names) == {"web", "shell"}
    subnet = front["IPAM"]["Config"][0]["Subnet"]
    assert all(ip.endswith("/" + subnet.split("/")[1]) for ip in names.values())
    # local means local: h2 has none of them, only Docker's three predefined networks
    assert {n["Name"] for n in lab.api("h2", "/networks")} == {"bridge", "host", "none"}


def test_containers_on_one_bridge_reach_each_other_by_name(lab: LabRig) -> None:
    out = lab.ferry("h1", "exec", "shell", "curl", "-s", "-m", "3", "http://web/").stdout
    assert "Directory listing" in out
    assert lab.ferry("h1", "exec", "shell", "getent", "hosts", "web.front").stdout.strip()


def test_bridges_are_isolated_from_each_other_in_names_and_packets(lab: LabRig) -> None:
    assert lab.ferry("h1", "exec", "other", "getent", "hosts", "web", check=False).returncode != 0
    assert not reaches(lab, "other", address(lab, "h1", "web", "front"))
    assert reaches(lab, "shell", address(lab, "h1", "web", "front"))


def test_a_published_port_and_egress_work_and_an_internal_bridge_has_neither(lab: LabRig) -> None:
    h1 = lab.topo.node("h1").addr
    client = lab.topo.node("c1").addr
    out = lab.exec("c1", "curl", "-s", "-m", "3", f"http://{h1}:8088/").stdout
    assert "Directory listing" in out
    assert reaches(lab, "shell", client)
    assert not reaches(lab, "vault", client)


def test_errors_are_clear_and_a_used_network_cannot_be_removed(lab: LabRig) -> None:
    cases = [
        (("network", "create", "front"), "already exists"),
        (("network", "create", "-d", "weave", "x"), "unknown network driver"),
        (("network", "create", "-d", "macvlan", "--subnet", "10.1.0.0/24", "x"), "parent=IFACE"),
        (("network", "create", "-d", "overlay", "x"), 'Use "docker swarm init"'),
        (("network", "rm", "front"), "has active endpoints"),
        # the lab's underlay is a route of every host: a bridge on it would capture it
        (("network", "create", "--subnet", lab.topo.subnet, "x"), "networks have overlapping"),
    ]
    for args, message in cases:
        result = lab.ferry("h1", *args, check=False)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
    subnet = lab.api("h1", "/networks/front")["IPAM"]["Config"][0]["Subnet"]
    taken = address(lab, "h1", "web", "front")
    result = lab.ferry("h1", "run", "--network", "front", "--ip", taken, TOOLS, "true", check=False)
    assert "already in use" in result.stderr, (subnet, result.stderr)


def test_a_restarted_ferryd_keeps_bridges_addresses_and_names(lab: LabRig) -> None:
    h1 = lab.topo.node("h1").addr
    before = address(lab, "h1", "web", "front")
    labmod.stop_ferryd(lab.topo, "h1")
    try:
        assert (
            "Directory listing"
            in lab.exec("c1", "curl", "-s", "-m", "3", f"http://{h1}:8088/").stdout
        )
    finally:
        labmod.start_ferryd(lab.topo, "h1")
    assert address(lab, "h1", "web", "front") == before
    assert (
        "Directory listing"
        in lab.ferry("h1", "exec", "shell", "curl", "-s", "-m", "3", "http://web/").stdout
    )
    lab.ferry("h1", "run", "-d", "--name", "late", "--network", "front", TOOLS, "sleep", "60")
    assert address(lab, "h1", "late", "front") not in {before, address(lab, "h1", "shell", "front")}
    lab.ferry("h1", "rm", "-f", "late")


def test_a_stopped_container_outlives_its_removed_network(lab: LabRig) -> None:
    lab.ferry("h1", "network", "create", "gone")
    lab.ferry("h1", "run", "-d", "--name", "drifter", "--network", "gone", TOOLS, "sleep", "600")
    try:
        lab.ferry("h1", "stop", "drifter")
        # stopped, it still belongs to its network, with no address until it starts again
        networks = (
            "{{range $name, $net := .NetworkSettings.Networks}}{{$name}}={{$net.IPAddress}};{{end}}"
        )
        assert lab.ferry("h1", "inspect", "-f", networks, "drifter").stdout == "gone=;\n"
        listed = lab.ferry(
            "h1", "ps", "-a", "-f", "name=drifter", "--format", "{{.Names}} {{.State}}"
        ).stdout
        assert listed == "drifter exited\n"
        lab.ferry("h1", "network", "rm", "gone")
        assert "gone not found" in lab.ferry("h1", "start", "drifter", check=False).stderr
        lab.ferry("h1", "network", "connect", "back", "drifter")
        lab.ferry("h1", "network", "disconnect", "gone", "drifter")
        lab.ferry("h1", "start", "drifter")
        ip = address(lab, "h1", "drifter", "back")
        assert ip
        assert lab.ferry("h1", "inspect", "-f", networks, "drifter").stdout == f"back={ip};\n"
        driver = lab.ferry("h1", "network", "inspect", "--format", "{{.Driver}}", "back").stdout
        assert driver == "bridge\n"
    finally:
        lab.ferry("h1", "rm", "-f", "drifter")


def test_attached_runs_stream_their_output_and_exit_code_even_with_rm(lab: LabRig) -> None:
    before = lab.ferry("h1", "ps", "-a", "-q").stdout
    ours = lab.ferry("h1", "run", "--rm", TOOLS, "sh", "-c", "echo out; exit 3", check=False)
    assert (ours.returncode, ours.stdout) == (3, "out\n")
    # the docker CLI names the network "default" when none is given
    theirs = lab.exec("h1", "docker", "run", "--rm", TOOLS, "sh", "-c", "echo hi; exit 4",
                      check=False)  # fmt: skip
    assert (theirs.returncode, theirs.stdout) == (4, "hi\n"), theirs.stderr
    assert lab.ferry("h1", "ps", "-a", "-q").stdout == before


def test_macvlan_containers_sit_on_the_lan_with_their_own_address(lab: LabRig) -> None:
    underlay = lab.topo.subnet
    base = underlay.rsplit(".", 1)[0]
    for host, ip in (("h1", f"{base}.200"), ("h2", f"{base}.201")):
        lab.ferry(
            host, "network", "create", "-d", "macvlan", f"--subnet={underlay}",
            f"--gateway={base}.1", "-o", "parent=eth0", "lan",
        )  # fmt: skip
        lab.ferry(host, "run", "-d", "--name", f"lan-{host}", "--network", "lan", "--ip", ip, *HTTP)
    try:
        # a machine on the LAN reaches it directly, and so does a container on another host
        out = lab.exec("c1", "curl", "-s", "-m", "3", f"http://{base}.200/").stdout
        assert "Directory listing" in out
        out = lab.ferry(
            "h2", "exec", "lan-h2", "curl", "-s", "-m", "3", f"http://{base}.200/"
        ).stdout
        assert "Directory listing" in out
        inspect = lab.api("h1", "/networks/lan")
        assert inspect["Driver"] == "macvlan" and inspect["Options"]["parent"] == "eth0"
        assert [c["IPv4Address"] for c in inspect["Containers"].values()] == [f"{base}.200/24"]
    finally:
        for host in ("h1", "h2"):
            lab.ferry(host, "rm", "-f", f"lan-{host}", check=False)
            lab.ferry(host, "network", "rm", "lan", check=False)


def test_removing_the_bridges_leaves_no_bridge_and_no_rule_of_theirs(lab: LabRig) -> None:
    for name in ("web", "shell", "other", "vault"):
        lab.ferry("h1", "rm", "-f", name)
    devices = {
        lab.api("h1", f"/networks/{n}")["Options"]["com.docker.network.bridge.name"]
        for n in ("front", "back", "sealed")
    }
    lab.ferry("h1", "network", "rm", "front", "back", "sealed")
    assert {n["Name"] for n in lab.api("h1", "/networks")} == {"bridge", "host", "none"}
    netns = nsfs.netns_path(f"{lab.name}-h1")
    links = subprocess.run(
        ["ip", "-n", netns.name, "-br", "link"], capture_output=True, text=True, check=True
    ).stdout
    assert not any(dev in links for dev in devices)
    wait_until(
        lambda: not any(dev in host_ruleset(lab, "h1") for dev in devices),
        5,
        "the removed bridges' rules to go (the default bridge's stay)",
    )
    assert "8088" not in host_ruleset(lab, "h1")
