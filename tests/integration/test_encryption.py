"""Encrypted overlays (``--opt encrypted``): VXLAN inside WireGuard between hosts — nothing
but WireGuard on the underlay, a restart that keeps the tunnels, and nothing left behind."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.kernel.wireguard import SOCKET_DIR
from ferry.lab import lab as labmod
from ferry.network.encryption import tunnel_ifname
from tests.integration.lablib import TOOLS, LabRig, new_lab, underlay_capture, wait_until


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3) as rig:
        rig.form_swarm()
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "-o", "encrypted",
                  "vault")  # fmt: skip
        rig.ferry("h2", "run", "-d", "--network", "vault", "--name", "s1", TOOLS, "sleep", "3600")
        rig.ferry("h3", "run", "-d", "--network", "vault", "--name", "s2", TOOLS, "sleep", "3600")
        yield rig


def host_ns(lab: LabRig, host: str) -> str:
    return lab.topo.node(host).netns


def device(lab: LabRig, host: str) -> str:
    return tunnel_ifname(lab.topo.node(host).netns_prefix)


def wireguard_process(lab: LabRig, host: str) -> int | None:
    state = lab.topo.node(host).run_dir / "wireguard.json"
    return int(json.loads(state.read_text())["pid"]) if state.exists() else None


def address(lab: LabRig, host: str, container: str) -> str:
    template = '{{(index .NetworkSettings.Networks "vault").IPAddress}}'
    return lab.ferry(host, "inspect", "-f", template, container).stdout.strip()


def in_netns(netns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net={netns}", *cmd], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_an_encrypted_network_says_so_and_has_room_for_both_headers(lab: LabRig) -> None:
    [net] = json.loads(lab.ferry("h1", "network", "inspect", "vault").stdout)
    assert "encrypted" in net["Options"]
    link = lab.ferry("h2", "exec", "s1", "ip", "-o", "link", "show", "eth0").stdout
    assert " mtu 1370 " in link  # 1500 - WireGuard 80 - VXLAN 50


def test_only_wireguard_crosses_the_underlay(lab: LabRig) -> None:
    with underlay_capture(lab, "udp and not port 53", 200) as lines:
        out = lab.ferry("h2", "exec", "s1", "ping", "-c", "10", "-i", "0.2", "s2").stdout
    assert " 0% packet loss" in out
    assert len(lines) >= 10, "the capture saw no overlay traffic"
    assert all(".51820 >" in line and ".51820:" in line for line in lines), "\n".join(lines[:20])


def test_frames_for_port_4790_only_enter_through_the_tunnel(lab: LabRig) -> None:
    ruleset = in_netns(f"/run/netns/{host_ns(lab, 'h2')}", "nft", "list", "ruleset").stdout
    assert f'udp dport 4790 iifname != "{device(lab, "h2")}" drop' in ruleset
    rules = in_netns(f"/run/netns/{host_ns(lab, 'h2')}", "ip", "rule").stdout
    assert "ipproto udp dport 4790 lookup 4790" in rules
    assert "ipproto udp dport 4790 blackhole" in rules


def test_a_ferryd_restart_keeps_encrypted_traffic_flowing(lab: LabRig) -> None:
    before = wireguard_process(lab, "h2")
    sandbox = lab.ferry("h2", "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "s1").stdout
    pinger = subprocess.Popen(  # straight in the container's namespace: no ferryd in the way
        ["nsenter", f"--net={sandbox.strip()}", "ping", "-c", "40", "-i", "0.1", "-W", "1",
         address(lab, "h3", "s2")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        threading.Event().wait(0.5)
        labmod.stop_ferryd(lab.topo, "h2")
    finally:
        labmod.start_ferryd(lab.topo, "h2")
    out, _ = pinger.communicate(timeout=30)
    assert " 0% packet loss" in out, out
    assert wireguard_process(lab, "h2") == before  # adopted, not restarted


def test_the_last_encrypted_endpoint_takes_the_tunnel_with_it(lab: LabRig) -> None:
    lab.ferry("h3", "run", "-d", "--network", "vault", "--name", "s3", TOOLS, "sleep", "600")
    lab.ferry("h3", "rm", "-f", "s2", "s3")
    netns = f"/run/netns/{host_ns(lab, 'h3')}"

    def gone() -> bool:
        links = in_netns(netns, "ip", "-o", "link").stdout
        rules = in_netns(netns, "ip", "rule").stdout
        tables = in_netns(netns, "nft", "list", "tables").stdout
        return device(lab, "h3") not in links and "4790" not in rules and "encrypt" not in tables

    wait_until(gone, 10, "h3's tunnel, rules and guard to go")
    assert wireguard_process(lab, "h3") is None
    assert not (SOCKET_DIR / f"{device(lab, 'h3')}.sock").exists()
    assert Path(f"/run/netns/{host_ns(lab, 'h2')}").exists()
    # h2 keeps its tunnel for s1; a newcomer on h3 brings h3's back and reaches s1 at once
    lab.ferry("h3", "run", "-d", "--network", "vault", "--name", "s4", TOOLS, "sleep", "600")
    try:
        out = lab.ferry("h3", "exec", "s4", "ping", "-c", "2", "-W", "2", "s1").stdout
        assert " 0% packet loss" in out
    finally:
        lab.ferry("h3", "rm", "-f", "s4")
