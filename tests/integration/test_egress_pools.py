"""The egress bridge's subnet comes from daemon.json's ``default-address-pools``, as Docker's
docker_gwbridge does: h1 starts fresh with pools of 10.123.0.0/16 in /24s (its default bridge
takes the first, its egress bridge the second), h2 keeps Docker's pools (172.18.0.0/16). The
masquerade rule, the ingress sandbox's address and the mesh's DNAT, ``network inspect`` and the
containers' way out all follow; a restart with other pools keeps the subnet."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from ferry.daemon.config import DaemonConfig
from ferry.lab import lab as labmod
from ferry.lab.apps import WHOAMI
from tests.integration.lablib import TOOLS, LabRig, new_lab, restart_ferryd, wait_until

POOLS = [{"base": "10.123.0.0/16", "size": 24}]
EGRESS, GATEWAY, SANDBOX = "10.123.1.0/24", "10.123.1.1", "10.123.1.2"


def set_pools(lab: LabRig, host: str, pools: list[dict[str, Any]]) -> None:
    path = labmod.daemon_json_path(lab.topo.node(host))
    path.write_text(json.dumps({**json.loads(path.read_text()), "default-address-pools": pools}))


def start_fresh_with_pools(lab: LabRig, host: str) -> None:
    """``host`` as a fresh host whose daemon.json names POOLS: no network records, no default
    bridge in the kernel (the lab's first start made them with Docker's pools)."""
    labmod.stop_ferryd(lab.topo, host)
    config = DaemonConfig(state_dir=lab.topo.node(host).state_dir)
    shutil.rmtree(config.networks_dir)
    config.egress_path.unlink(missing_ok=True)
    lab.exec(host, "ip", "link", "del", "ferry0")
    set_pools(lab, host, POOLS)
    labmod.start_ferryd(lab.topo, host)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=2, clients=1) as rig:
        start_fresh_with_pools(rig, "h1")
        rig.form_swarm()
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "front")
        rig.ferry(
            "h1", "service", "create", "--name", "web", "--network", "front", "-p", "8080:80",
            "--constraint", "node.hostname==h2", TOOLS, "python3", "-c", WHOAMI,
        )  # fmt: skip
        rig.ferry("h1", "run", "-d", "--network", "front", "--name", "out", TOOLS, "sleep", "600")
        yield rig


def in_host(lab: LabRig, host: str, *cmd: str) -> str:
    return lab.exec(host, *cmd).stdout


def mesh_answers(lab: LabRig, host: str) -> bool:
    url = f"http://{lab.topo.node(host).addr}:8080/"
    return bool(lab.exec("c1", "curl", "-s", "-m", "2", url, check=False).stdout.strip())


def test_the_egress_network_shows_the_subnet_from_the_pools(lab: LabRig) -> None:
    assert lab.api("h1", "/networks/bridge")["IPAM"]["Config"][0]["Subnet"] == "10.123.0.0/24"
    shown = lab.api("h1", "/networks/ferry_gwbridge")
    assert shown["IPAM"]["Config"] == [{"Subnet": EGRESS, "Gateway": GATEWAY}]
    assert shown["Containers"]["ingress-sbox"]["IPv4Address"] == f"{SANDBOX}/24"
    fmt = "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}"
    out = in_host(lab, "h1", "docker", "-H", lab.socket("h1"), "network", "inspect", "-f", fmt,
                  "ferry_gwbridge")  # fmt: skip
    assert out.split() == [EGRESS, GATEWAY]
    # h2 kept Docker's pools: 172.18.0.0/16, as before
    other = lab.api("h2", "/networks/ferry_gwbridge")["IPAM"]["Config"]
    assert other == [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]


def test_the_kernel_holds_the_subnet_and_the_masquerade_rule_names_it(lab: LabRig) -> None:
    [link] = json.loads(in_host(lab, "h1", "ip", "-j", "-4", "addr", "show", "ferry_gwbridge"))
    assert [(a["local"], a["prefixlen"]) for a in link["addr_info"]] == [(GATEWAY, 24)]
    egress = in_host(lab, "h1", "nft", "list", "table", "ip", "ferry_egress")
    assert f'ip saddr {EGRESS} oifname != "ferry_gwbridge" masquerade' in egress
    assert "172.18." not in egress


def egress_findings(lab: LabRig) -> list[dict[str, str]]:
    out = lab.ferry("h1", "doctor", "--format", "json", check=False).stdout
    return [f for f in json.loads(out) if f["Check"] == "egress"]


def test_doctor_expects_the_masquerade_of_the_hosts_egress_subnet(lab: LabRig) -> None:
    assert egress_findings(lab) == []
    chain = ("ip", "ferry_egress", "postrouting")
    rules = [
        ("ip", "saddr", EGRESS, "oifname", "!=", "ferry_gwbridge", "masquerade"),
        ("oifname", "ferry_gwbridge", "ip", "saddr", "127.0.0.0/8", "masquerade"),
    ]
    stale = ("ip", "saddr", "172.18.0.0/16", "oifname", "!=", "ferry_gwbridge", "masquerade")
    lab.exec("h1", "nft", "flush", "chain", *chain)
    try:
        lab.exec("h1", "nft", "add", "rule", *chain, *stale)
        lab.exec("h1", "nft", "add", "rule", *chain, *rules[1])
        found = {(f["Item"], f["Actual"]) for f in egress_findings(lab)}
        item = "postrouting: ip saddr {}, oifname != ferry_gwbridge -> masquerade"
        assert found == {
            (item.format(EGRESS), "(missing)"),  # the host's subnet, as doctor expects it
            (item.format("172.18.0.0/16"), "present"),  # the stale rule, which it does not
        }
    finally:
        lab.exec("h1", "nft", "flush", "chain", *chain)
        for rule in rules:
            lab.exec("h1", "nft", "add", "rule", *chain, *rule)
    assert egress_findings(lab) == []


def test_the_routing_mesh_reaches_the_service_through_the_sandbox_in_the_pool(
    lab: LabRig,
) -> None:
    ports = in_host(lab, "h1", "nft", "list", "table", "ip", "ferry_ports")
    assert f"tcp dport 8080 dnat to {SANDBOX}:8080" in ports
    for host in ("h1", "h2"):  # h1's sandbox forwards over the overlay to the task on h2
        wait_until(lambda h=host: mesh_answers(lab, h), 30, f"port 8080 on {host} to answer")


def test_an_overlay_container_gets_out_through_the_pools_gateway(lab: LabRig) -> None:
    addrs = json.loads(lab.ferry("h1", "exec", "out", "ip", "-j", "-4", "addr").stdout)
    eth1 = next(link for link in addrs if link["ifname"] == "eth1")
    assert eth1["addr_info"][0]["local"].startswith("10.123.1.")
    route = lab.ferry("h1", "exec", "out", "ip", "route", "show", "default").stdout
    assert f"default via {GATEWAY} dev eth1" in route
    ping = lab.ferry("h1", "exec", "out", "ping", "-c", "2", "-i", "0.2", "-W", "2", GATEWAY)
    assert " 0% packet loss" in ping.stdout


def test_a_restart_with_other_pools_keeps_the_subnet(lab: LabRig) -> None:
    set_pools(lab, "h1", [{"base": "10.124.0.0/16", "size": 24}])
    restart_ferryd(lab, "h1")
    shown = lab.api("h1", "/networks/ferry_gwbridge")["IPAM"]["Config"]
    assert shown == [{"Subnet": EGRESS, "Gateway": GATEWAY}]
    egress = in_host(lab, "h1", "nft", "list", "table", "ip", "ferry_egress")
    assert f"ip saddr {EGRESS} " in egress
    wait_until(lambda: mesh_answers(lab, "h1"), 30, "port 8080 on h1 to answer again")
