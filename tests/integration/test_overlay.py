"""Issue 3: overlay networks across hosts — connectivity by name, isolation, clean removal,
restart without loss, nothing but VXLAN on the underlay, DNS, and clear errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.lab import lab as labmod
from tests.integration.lablib import (
    TOOLS,
    LabRig,
    new_lab,
    sandbox_entries,
    underlay_capture,
    wait_until,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3) as rig:
        rig.form_swarm()
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "blue")
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "red")
        rig.ferry("h2", "run", "-d", "--network", "blue", "--name", "app1", TOOLS, "sleep", "3600")
        rig.ferry("h3", "run", "-d", "--network", "blue", "--name", "app2", TOOLS, "sleep", "3600")
        yield rig


def net_id(lab: LabRig, name: str) -> str:
    return str(lab.api("h1", f"/networks/{name}")["Id"])


def ip_of(lab: LabRig, host: str, container: str, network: str) -> str:
    info = lab.api(host, f"/containers/{container}/json")
    return str(info["NetworkSettings"]["Networks"][network]["IPAddress"])


def test_containers_on_different_hosts_ping_each_other_by_name(lab: LabRig) -> None:
    out = lab.ferry("h2", "exec", "app1", "ping", "-c", "3", "-W", "2", "app2").stdout
    assert " 0% packet loss" in out
    assert ip_of(lab, "h3", "app2", "blue") in out


def test_network_inspect_shows_both_containers_the_vni_and_the_peers(lab: LabRig) -> None:
    [net] = json.loads(lab.ferry("h1", "network", "inspect", "--verbose", "blue").stdout)
    assert net["Containers"] == {}  # Docker's: only this host's containers; none run on h1
    tasks = net["Services"][""]["Tasks"]  # containers attached without a service
    assert {t["Name"]: t["Info"]["Host IP"] for t in tasks} == {
        "app1": lab.topo.node("h2").addr,
        "app2": lab.topo.node("h3").addr,
    }
    [on_h2] = json.loads(lab.ferry("h2", "network", "inspect", "blue").stdout)
    app1_id = lab.api("h2", "/containers/app1/json")["Id"]
    assert [(k, c["Name"]) for k, c in on_h2["Containers"].items()] == [(app1_id, "app1")]
    assert int(net["Options"]["com.docker.network.driver.overlay.vxlanid_list"]) >= 4097
    peers = {p["IP"] for p in net["Peers"]}
    assert peers == {lab.topo.node("h2").addr, lab.topo.node("h3").addr}
    assert net["IPAM"]["Config"][0]["Subnet"]
    assert on_h2["Containers"][app1_id]["MacAddress"].startswith("02:42:")


def test_dns_answers_over_udp_and_tcp_and_refuses_outside_names_fast(lab: LabRig) -> None:
    expected = ip_of(lab, "h3", "app2", "blue")
    udp = lab.ferry("h2", "exec", "app1", "dig", "@127.0.0.11", "+short", "app2").stdout.strip()
    tcp = lab.ferry("h2", "exec", "app1", "dig", "@127.0.0.11", "+tcp", "+short", "app2").stdout
    assert udp == expected
    assert tcp.strip() == expected
    qualified = lab.ferry("h2", "exec", "app1", "dig", "@127.0.0.11", "+short", "app2.blue").stdout
    assert qualified.strip() == expected
    outside = lab.ferry(
        "h2",
        "exec",
        "app1",
        "dig",
        "@127.0.0.11",
        "+tries=1",
        "+time=2",
        "example.com",
        check=False,
    ).stdout
    assert "status: REFUSED" in outside
    assert re.search(r"Query time: (\d+) msec", outside) is not None


def test_two_overlays_are_isolated_also_on_one_host(lab: LabRig) -> None:
    lab.ferry("h2", "run", "-d", "--network", "red", "--name", "r2", TOOLS, "sleep", "3600")
    lab.ferry("h3", "run", "-d", "--network", "red", "--name", "r3", TOOLS, "sleep", "3600")
    try:
        assert " 0% packet loss" in lab.ferry("h2", "exec", "r2", "ping", "-c", "1", "r3").stdout
        for target_host, target in (("h3", "app2"), ("h2", "app1")):
            ip = ip_of(lab, target_host, target, "blue")
            result = lab.ferry("h2", "exec", "r2", "ping", "-c", "2", "-W", "1", ip, check=False)
            assert result.returncode != 0, f"r2 on red reached {target} on blue"
        unknown = lab.ferry("h2", "exec", "r2", "getent", "hosts", "app2", check=False)
        assert unknown.returncode != 0
    finally:
        lab.ferry("h2", "rm", "-f", "r2")
        lab.ferry("h3", "rm", "-f", "r3")


def test_removing_a_container_removes_its_entries_on_every_host(lab: LabRig) -> None:
    lab.ferry("h3", "run", "-d", "--network", "blue", "--name", "gone", TOOLS, "sleep", "3600")
    blue = net_id(lab, "blue")
    info = lab.api("h3", "/containers/gone/json")["NetworkSettings"]["Networks"]["blue"]
    mac, ip = info["MacAddress"], info["IPAddress"]

    def programmed() -> bool:
        fdb, neigh = sandbox_entries(lab, "h2", blue)
        return mac in fdb and ip in neigh

    wait_until(programmed, 5, "h2 to learn the new container")
    lab.ferry("h3", "rm", "-f", "gone")

    def cleaned() -> bool:
        return all(mac not in "".join(sandbox_entries(lab, h, blue)) for h in ("h1", "h2", "h3"))

    wait_until(cleaned, 5, "every host to forget the removed container")
    _fdb, neigh = sandbox_entries(lab, "h2", blue)
    assert ip not in neigh


def test_a_restarted_agent_keeps_traffic_flowing(lab: LabRig) -> None:
    # The pinger runs inside app1's namespaces on its own (an exec would end with ferryd).
    # The restart is immediate: an agent away for longer than the node's heartbeat window
    # makes the node Down, and a Down node's endpoints leave every host's forwarding tables
    # by design (issue 8), which would cut this traffic.
    app1_pid = lab.api("h2", "/containers/app1/json")["State"]["Pid"]
    target = ip_of(lab, "h3", "app2", "blue")
    pinger = subprocess.Popen(  # bounded: 50 pings over 5 s
        [
            "nsenter", "--target", str(app1_pid), "--net",
            "ping", "-i", "0.1", "-c", "50", "-W", "1", target,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        threading.Event().wait(0.5)
        labmod.stop_ferryd(lab.topo, "h2")
        labmod.start_ferryd(lab.topo, "h2")
        out, _ = pinger.communicate(timeout=30)
        assert " 0% packet loss" in out, out
        assert lab.api("h2", "/containers/app1/json")["State"]["Running"]
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()


def test_a_restarted_agent_resyncs_what_changed_while_it_was_away(lab: LabRig) -> None:
    blue = net_id(lab, "blue")
    labmod.stop_ferryd(lab.topo, "h2")
    try:
        # While h2's agent is away: one container appears, one disappears, on h3.
        lab.ferry("h3", "run", "-d", "--network", "blue", "--name", "newcomer", TOOLS, "sleep",
                  "3600")  # fmt: skip
        lab.ferry("h3", "run", "-d", "--network", "blue", "--name", "leaver", TOOLS, "sleep",
                  "3600")  # fmt: skip
        wait_until(
            lambda: "leaver" in str(lab.api("h1", "/networks/blue", verbose="true")),
            5,
            "leaver registered",
        )
        leaver = lab.api("h3", "/containers/leaver/json")["NetworkSettings"]["Networks"]["blue"]
        lab.ferry("h3", "rm", "-f", "leaver")
    finally:
        labmod.start_ferryd(lab.topo, "h2")
    try:
        assert lab.api("h2", "/containers/app1/json")["State"]["Running"]
        newcomer_mac = lab.api("h3", "/containers/newcomer/json")["NetworkSettings"]["Networks"][
            "blue"
        ]["MacAddress"]

        def resynced() -> bool:
            fdb, _ = sandbox_entries(lab, "h2", blue)
            return newcomer_mac in fdb and leaver["MacAddress"] not in fdb

        # the node may have gone Down while away (its endpoints left the other hosts' tables):
        # once back, everything is programmed again within seconds
        wait_until(resynced, 10, "h2 to add the newcomer and drop the leaver after its restart")
        wait_until(
            lambda: (
                " 0% packet loss"
                in lab.ferry(
                    "h2", "exec", "app1", "ping", "-c", "2", "newcomer", check=False
                ).stdout
            ),
            10,
            "app1 on h2 to reach the newcomer on h3",
        )
    finally:
        for name in ("newcomer", "leaver"):
            lab.ferry("h3", "rm", "-f", name, check=False)


def test_only_vxlan_crosses_the_underlay(lab: LabRig) -> None:
    # one line per underlay packet starts with its timestamp; tcpdump prints the decoded
    # inner packet of each VXLAN datagram on a continuation line
    expression = "not arp and not (tcp port 2377 or tcp port 2380) and not ip6"
    with underlay_capture(lab, expression) as lines:
        lab.ferry("h2", "exec", "app1", "ping", "-c", "5", "-i", "0.2", "app2")
        lab.ferry("h2", "exec", "app1", "sh", "-c", "getent hosts app2 >/dev/null")
    assert len(lines) >= 10, "the capture saw no overlay traffic"
    assert all(".4789:" in line or ".4789 " in line for line in lines), "\n".join(lines[:20])


def test_bad_network_input_is_refused_clearly(lab: LabRig) -> None:
    before = lab.ferry("h1", "network", "ls", "-q").stdout
    cases = [
        (["--subnet", "10.300.0.0/24", "n1"], "invalid subnet"),
        (["--subnet", "10.20.0.0/16", "--gateway", "10.21.0.1", "n2"], "not a usable address"),
        (["--subnet", "10.20.0.5/24", "n3"], "invalid subnet"),
        (["blue"], "already exists"),
        # the underlay holds every node's address: its tasks would route the nodes inside
        (["--subnet", lab.topo.subnet, "n4"], "holds the address"),
    ]
    for args, message in cases:
        result = lab.ferry("h1", "network", "create", "-d", "overlay", *args, check=False)
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    blue_subnet = lab.api("h1", "/networks/blue")["IPAM"]["Config"][0]["Subnet"]
    overlap = lab.ferry(
        "h1", "network", "create", "-d", "overlay", "--subnet", blue_subnet, "n4", check=False
    )
    assert "overlaps" in overlap.stderr
    assert lab.ferry("h1", "network", "ls", "-q").stdout == before
    busy = lab.ferry("h1", "network", "rm", "blue", check=False)
    assert busy.returncode != 0
    assert "active endpoints" in busy.stderr


def test_bad_container_input_is_refused_and_nothing_is_left(lab: LabRig) -> None:
    lab.ferry(
        "h1",
        "network",
        "create",
        "-d",
        "overlay",
        "--attachable",
        "--subnet",
        "10.250.0.0/30",
        "tiny",
    )
    lab.ferry("h1", "network", "create", "-d", "overlay", "svconly")
    blue_subnet = lab.api("h1", "/networks/blue")["IPAM"]["Config"][0]["Subnet"]
    taken = ip_of(lab, "h2", "app1", "blue")
    outside = blue_subnet.replace(".0/24", ".0").rsplit(".", 2)[0] + ".99.9"
    before = lab.ferry("h2", "ps", "-a", "-q").stdout
    netns_before = labmod.nsfs.list_netns(f"{lab.name}-h2-c-")
    cases = [
        (["--network", "blue", "--name", "app1", TOOLS, "true"], "already in use"),
        (["--network", "nosuchnet", TOOLS, "true"], "not found"),
        (["--network", "blue", "nosuchimage", "true"], "No such image"),
        (["--network", "blue", TOOLS, "no-such-command"], "executable file not found"),
        (["--network", "svconly", TOOLS, "true"], "not manually attachable"),
        (["--network", "blue", "--ip", outside, TOOLS, "true"], "outside"),
    ]
    for args, message in cases:
        result = lab.ferry("h2", "run", "-d", *args, check=False)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
    lab.ferry("h2", "run", "-d", "--network", "tiny", "--name", "t1", TOOLS, "sleep", "60")
    full = lab.ferry(
        "h2", "run", "-d", "--network", "tiny", "--name", "t2", TOOLS, "sleep", "60", check=False
    )
    assert "no free address" in full.stderr
    dup_ip = lab.ferry(
        "h2",
        "run",
        "-d",
        "--network",
        "blue",
        "--ip",
        taken,
        "--name",
        "t3",
        TOOLS,
        "true",
        check=False,
    )
    assert "already in use" in dup_ip.stderr
    lab.ferry("h2", "rm", "-f", "t1")
    # as Docker: a container whose start failed (a command not found, no free address) stays
    # Created, holding no namespace and no address, until removed; the rest were never made
    left = sorted(set(lab.ferry("h2", "ps", "-a", "-q").stdout.split()) - set(before.split()))
    shown = {c: lab.api("h2", f"/containers/{c}/json") for c in left}
    assert {i["State"]["Status"] for i in shown.values()} <= {"created"}, shown
    # the named ones are those refused for an address when they started
    assert {i["Name"] for i in shown.values() if i["Name"] in ("/t2", "/t3")} >= {"/t2"}
    assert labmod.nsfs.list_netns(f"{lab.name}-h2-c-") == netns_before
    lab.ferry("h2", "rm", *left)
    assert lab.ferry("h2", "ps", "-a", "-q").stdout == before
    assert labmod.nsfs.list_netns(f"{lab.name}-h2-c-") == netns_before
    missing = lab.ferry("h2", "exec", "nobody", "true", check=False)
    assert "No such container" in missing.stderr
    lab.ferry("h1", "network", "rm", "tiny")
    lab.ferry("h1", "network", "rm", "svconly")


def test_the_docker_cli_drives_networks_and_containers(lab: LabRig) -> None:
    lab.exec("h1", "docker", "network", "create", "-d", "overlay", "--attachable", "dnet")
    assert "dnet" in lab.exec("h1", "docker", "network", "ls").stdout
    lab.exec(
        "h2", "docker", "run", "-d", "--network", "dnet", "--name", "d1", TOOLS, "sleep", "600"
    )
    lab.exec(
        "h3",
        "docker",
        "run",
        "-d",
        "--network",
        "dnet",
        "--name",
        "d2",
        TOOLS,
        "sh",
        "-c",
        "echo ready; sleep 600",
    )
    out = lab.exec("h2", "docker", "exec", "d1", "ping", "-c", "2", "d2").stdout
    assert " 0% packet loss" in out
    code = lab.exec("h2", "docker", "exec", "d1", "sh", "-c", "exit 3", check=False).returncode
    assert code == 3
    assert "d1" in lab.exec("h2", "docker", "ps").stdout
    assert "ready" in lab.exec("h3", "docker", "logs", "d2").stdout
    state = lab.exec("h2", "docker", "inspect", "d1", "--format", "{{.State.Status}}").stdout
    assert state.strip() == "running"

    # as Docker: each node lists its own containers; the verbose view, every node's
    def listed(host: str, *verbose: str) -> set[str]:
        shape = (
            "{{range .Services}}{{range .Tasks}}{{.Name}} {{end}}{{end}}"
            if verbose
            else "{{range .Containers}}{{.Name}} {{end}}"
        )
        out = lab.exec(host, "docker", "network", "inspect", *verbose, "dnet", "--format", shape)
        return set(out.stdout.split())

    assert (listed("h1"), listed("h2"), listed("h3")) == (set(), {"d1"}, {"d2"})
    assert listed("h1", "-v") == {"d1", "d2"}
    lab.exec("h2", "docker", "rm", "-f", "d1")
    lab.exec("h3", "docker", "rm", "-f", "d2")
    lab.exec("h1", "docker", "network", "rm", "dnet")


def _busybox_rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for tool in ("sh", "ping", "sleep", "cat", "ls", "hostname", "nslookup", "true"):
        (root / "bin" / tool).symlink_to("busybox")
    for directory in ("etc", "proc", "dev", "sys", "tmp"):
        (root / directory).mkdir()
    tarball = tmp_path / "busybox.tar"
    subprocess.run(["tar", "-cf", str(tarball), "-C", str(root), "."], check=True)
    return tarball


def test_an_imported_image_runs_under_its_own_root_on_the_overlay(
    lab: LabRig, tmp_path: Path
) -> None:
    tarball = _busybox_rootfs(tmp_path)
    lab.ferry("h2", "image", "import", str(tarball), "busybox")
    assert "busybox" in lab.ferry("h2", "image", "ls").stdout
    lab.ferry("h2", "run", "-d", "--network", "blue", "--name", "bb", "busybox", "sleep", "600")
    try:
        listing = lab.ferry("h2", "exec", "bb", "ls", "/").stdout.split()
        assert "work" not in listing and "bin" in listing  # its own root, not the host's
        assert lab.ferry("h2", "exec", "bb", "cat", "/etc/resolv.conf").stdout.startswith(
            "nameserver 127.0.0.11"
        )
        out = lab.ferry("h2", "exec", "bb", "ping", "-c", "2", "app2").stdout
        assert " 0% packet loss" in out
        busy = lab.ferry("h2", "image", "rm", "busybox", check=False)
        assert "must force" in busy.stderr and "is using its referenced image" in busy.stderr
    finally:
        lab.ferry("h2", "rm", "-f", "bb")
    lab.ferry("h2", "image", "rm", "busybox")


def test_network_connect_and_disconnect_a_running_container(lab: LabRig) -> None:
    lab.ferry("h2", "run", "-d", "--network", "red", "--name", "hop", TOOLS, "sleep", "600")
    try:
        assert (
            lab.ferry("h2", "exec", "hop", "getent", "hosts", "app2", check=False).returncode != 0
        )
        lab.ferry("h2", "network", "connect", "--alias", "hopper", "blue", "hop")
        assert " 0% packet loss" in lab.ferry("h2", "exec", "hop", "ping", "-c", "1", "app2").stdout
        seen = lab.ferry("h3", "exec", "app2", "getent", "hosts", "hopper").stdout
        assert seen.strip()
        lab.ferry("h2", "network", "disconnect", "blue", "hop")
        assert (
            lab.ferry("h2", "exec", "hop", "getent", "hosts", "app2", check=False).returncode != 0
        )
    finally:
        lab.ferry("h2", "rm", "-f", "hop")
