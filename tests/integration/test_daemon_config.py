"""daemon.json on a lab host, as on a real one: every lab ferryd is started with
``--config-file`` (its data-root, its socket, the lab's registry), and a host whose file gains
``mtu``, ``default-address-pools`` and a second socket in ``hosts`` takes them at its next
start, all the way to the kernel: the default bridge and the veths plugged into it at that
MTU, a new bridge network's subnet from the pool, the API on both sockets. A file with a key
Ferry refuses stops ferryd from starting, naming the key."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.errors import Unavailable
from ferry.kernel import nsfs, proc
from ferry.lab import lab as labmod
from ferry.lab.records import exec_path
from tests.integration.lablib import TOOLS, LabRig, new_lab, restart_ferryd


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        yield rig


def edit_daemon_json(lab: LabRig, host: str, **changes: Any) -> dict[str, Any]:
    """Change keys of a host's daemon.json (``data_path_port`` → ``data-path-port``); the
    file as it was."""
    path = labmod.daemon_json_path(lab.topo.node(host))
    before: dict[str, Any] = json.loads(path.read_text())
    after = {**before, **{k.replace("_", "-"): v for k, v in changes.items()}}
    path.write_text(json.dumps(after))
    return before


def link_mtu(lab: LabRig, host: str, ifname: str) -> int:
    links = json.loads(lab.exec(host, "ip", "-j", "link", "show", ifname).stdout)
    return int(links[0]["mtu"])


def test_mtu_pools_and_hosts_reach_the_kernel_and_the_api(lab: LabRig) -> None:
    bridge = lab.api("h1", "/networks/bridge")
    assert bridge["Options"]["com.docker.network.driver.mtu"] == "1500"
    assert link_mtu(lab, "h1", "ferry0") == 1500
    extra = lab.topo.node("h1").run_dir / "docker.sock"
    edit_daemon_json(
        lab, "h1", mtu=1400,
        default_address_pools=[{"base": "10.77.0.0/16", "size": 24}],
        hosts=[lab.socket("h1"), f"unix://{extra}"],
    )  # fmt: skip
    restart_ferryd(lab, "h1")

    assert lab.api("h1", "/networks/bridge")["Options"]["com.docker.network.driver.mtu"] == "1400"
    assert link_mtu(lab, "h1", "ferry0") == 1400
    eth0 = lab.ferry("h1", "run", "--rm", TOOLS, "cat", "/sys/class/net/eth0/mtu").stdout
    assert eth0.strip() == "1400"  # the container's veth, on the default bridge
    lab.ferry("h1", "network", "create", "-d", "bridge", "pooled")
    assert lab.api("h1", "/networks/pooled")["IPAM"]["Config"][0]["Subnet"] == "10.77.0.0/24"

    # the second socket serves the same API: the docker CLI pointed at it sees the network
    fmt = "{{(index .IPAM.Config 0).Subnet}}"
    out = lab.exec("h1", "docker", "-H", f"unix://{extra}", "network", "inspect", "-f", fmt,
                   "pooled").stdout  # fmt: skip
    assert out.strip() == "10.77.0.0/24"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"data_path_port": 80}, "invalid data-path-port in the config file"),
        ({"hosts": ["tcp://0.0.0.0:2375"]}, "invalid hosts in the config file"),
        ({"debug": True}, "don't match any configuration option: debug"),
    ],
)
def test_a_refused_key_stops_ferryd_from_starting_and_is_named(
    lab: LabRig, change: dict[str, Any], words: str
) -> None:
    before = edit_daemon_json(lab, "h1", **change)
    labmod.stop_ferryd(lab.topo, "h1")
    try:
        with pytest.raises(Unavailable, match=words):
            labmod.start_ferryd(lab.topo, "h1")
    finally:
        labmod.daemon_json_path(lab.topo.node("h1")).write_text(json.dumps(before))
    labmod.start_ferryd(lab.topo, "h1")
    assert lab.api("h1", "/info")["Name"] == "h1"


def test_what_the_unit_s_kill_mode_rests_on(lab: LabRig) -> None:
    """ferryd.service's KillMode=process: a container's conmon stays in ferryd's cgroup
    (KillMode=mixed or control-group would kill it with ferryd), the container's processes
    are in cgroups runc makes under /ferry; stopping ferryd alone leaves both running."""
    host = lab.topo.node("h1")
    cid = lab.ferry("h1", "run", "-d", "--name", "kept", TOOLS, "sleep", "600").stdout.strip()
    conmon = int((host.state_dir / "containers" / cid / "bundle" / "conmon.pid").read_text())
    init = int(lab.api("h1", f"/containers/{cid}/json")["State"]["Pid"])
    ferryd = labmod.ferryd_pid(host)
    assert ferryd is not None

    def cgroup(pid: int) -> str:
        return Path(f"/proc/{pid}/cgroup").read_text()

    assert cgroup(conmon) == cgroup(ferryd)
    assert f"/ferry/{host.netns}/{cid}" in cgroup(init)
    labmod.stop_ferryd(lab.topo, "h1")
    assert Path(f"/proc/{conmon}").exists() and Path(f"/proc/{init}").exists()
    labmod.start_ferryd(lab.topo, "h1")
    assert lab.api("h1", f"/containers/{cid}/json")["State"]["Pid"] == init


def test_ferryd_tells_systemd_it_is_ready_once_its_api_answers(lab: LabRig, tmp_path: Path) -> None:
    """ferryd.service's Type=notify: READY=1 comes once the API answers, STOPPING=1 at a stop
    (the socket stands in for systemd's; ferryd is started as the lab starts it)."""
    host = lab.topo.node("h1")
    labmod.stop_ferryd(lab.topo, "h1")
    env = {"PATH": exec_path(), "LANG": "C.UTF-8", "NOTIFY_SOCKET": str(tmp_path / "notify")}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(env["NOTIFY_SOCKET"])
        systemd.settimeout(30)
        proc.spawn(
            labmod.ferryd_argv(host, None), env=env, log_path=host.run_dir / "ferryd.log",
            netns=nsfs.netns_path(host.netns),
        )  # fmt: skip
        assert systemd.recv(64) == b"READY=1"
        assert lab.api("h1", "/info")["Name"] == "h1"  # already answering when READY came
        labmod.stop_ferryd(lab.topo, "h1")
        assert systemd.recv(64) == b"STOPPING=1"
    labmod.start_ferryd(lab.topo, "h1")
