"""What a container can and cannot reach (issue 9, findings 2 and 4): no VXLAN of its own into
another overlay by any path, none of Ferry's ports on any node, not the host's loopback; VXLAN
only from the swarm's nodes; Ferry's ports cannot be published. Normal traffic still flows."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lablib import LabRig, new_lab, wait_until

PROBE = str(Path(__file__).with_name("netprobe.py"))  # on a lab client (the host's files)
# containers see none of the host's files: the probe is bind-mounted into each one
MOUNT = ("-v", f"{Path(__file__).parent}:/probe:ro")
IN_CONTAINER = "/probe/netprobe.py"
LISTEN = 7777
ADDRESS = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}} {{end}}"
VNI = '{{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}'


def probe(lab: LabRig, where: tuple[str, str | None], *args: str) -> str:
    """Run netprobe on a host's container, or on a lab client (container None)."""
    host, container = where
    if container is None:
        return lab.exec(host, "python3", PROBE, *args).stdout
    return lab.ferry(host, "exec", container, "python3", IN_CONTAINER, *args).stdout


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=2, clients=1) as rig:
        rig.form_swarm()
        net = ipaddress.ip_network(rig.topo.subnet)
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "ova")
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "ovb")
        rig.ferry("h1", "network", "create", "lbr")
        rig.ferry("h2", "network", "create", "-d", "macvlan", "--subnet", str(net),
                  "--gateway", str(net[1]), "-o", "parent=eth0", "lan")  # fmt: skip
        listener = (*MOUNT, "tools", "python3", "-u", IN_CONTAINER, "listen", str(LISTEN))
        rig.ferry("h1", "run", "-d", "--name", "a1", "--network", "ova", *listener)
        rig.ferry("h2", "run", "-d", "--name", "a2", "--network", "ova", *listener)
        sleeper = (*MOUNT, "tools", "sleep", "3600")
        rig.ferry("h1", "run", "-d", "--name", "b1", "--network", "ovb", *sleeper)
        rig.ferry("h2", "run", "-d", "--name", "b2", "--network", "ovb", *sleeper)
        rig.ferry("h1", "run", "-d", "--name", "l1", "--network", "lbr", *sleeper)
        rig.ferry("h2", "run", "-d", "--name", "m2", "--network", "lan", "--ip", str(net[200]),
                  *sleeper)  # fmt: skip
        rig.ferry("h1", "run", "-d", "--name", "web", "--network", "lbr", "-p", "8089:80",
                  "tools", "python3", "-m", "http.server", "80")  # fmt: skip
        yield rig


def overlay_address(lab: LabRig, host: str, container: str) -> tuple[str, str]:
    """(IP, MAC) of a container on ova (10.x; its egress address is 172.18.x)."""
    fields = lab.ferry(host, "inspect", "-f", ADDRESS, container).stdout.split()
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    return next((ip, mac) for ip, mac in pairs.items() if not ip.startswith("172.18."))


def received(lab: LabRig, host: str, container: str) -> list[str]:
    return lab.ferry(host, "logs", container).stdout.split()


def settle(lab: LabRig, marker: str) -> None:
    """Send ``marker`` through the overlay both ways until it arrived: whatever was sent before
    has been delivered (or dropped) by then."""
    (ip1, _), (ip2, _) = overlay_address(lab, "h1", "a1"), overlay_address(lab, "h2", "a2")

    def arrived() -> bool:
        probe(lab, ("h2", "a2"), "send", ip1, str(LISTEN), marker)
        probe(lab, ("h1", "a1"), "send", ip2, str(LISTEN), marker)
        return marker in received(lab, "h1", "a1") and marker in received(lab, "h2", "a2")

    wait_until(arrived, 20, f"{marker} over the overlay", every_s=0.5)


def test_crafted_vxlan_reaches_no_overlay_from_any_container_or_a_lan_host(lab: LabRig) -> None:
    vni = lab.ferry("h1", "network", "inspect", "-f", VNI, "ova").stdout.strip()
    targets = {"h1": overlay_address(lab, "h1", "a1"), "h2": overlay_address(lab, "h2", "a2")}
    h1, h2 = lab.topo.node("h1").addr, lab.topo.node("h2").addr
    lbr_gateway = lab.api("h1", "/networks/lbr")["IPAM"]["Config"][0]["Gateway"]
    attempts = [  # (from where, to which node's sandbox, sent to which address)
        (("h1", "b1"), "h1", h1),  # egress bridge → own host (input)
        (("h1", "b1"), "h1", "172.18.0.1"),  # … at the bridge's gateway address
        (("h1", "b1"), "h2", h2),  # egress bridge → another node (forward, masqueraded)
        (("h2", "b2"), "h1", h1),
        (("h1", "l1"), "h1", h1),  # a local bridge → own host
        (("h1", "l1"), "h1", lbr_gateway),
        (("h1", "l1"), "h2", h2),  # a local bridge → another node
        (("h2", "m2"), "h1", h1),  # macvlan: a LAN address of its own
        (("c1", None), "h1", h1),  # a LAN host that is not a node
        (("c1", None), "h2", h2),
    ]
    for (host, container), node, address in attempts:
        ip, mac = targets[node]
        src = str(ipaddress.ip_address(ip) + 200)  # some address of ova's subnet
        label = f"inject-{container or host}-to-{node}-via-{address}"
        probe(lab, (host, container), "vxlan", address, vni, mac, ip, src, label)
    settle(lab, "control-after-injections")
    leaked = [w for n, c in (("h1", "a1"), ("h2", "a2")) for w in received(lab, n, c)]
    assert [w for w in leaked if w.startswith("inject")] == []


def test_containers_open_no_cluster_or_etcd_port_on_any_node_by_any_path(lab: LabRig) -> None:
    h1 = lab.topo.node("h1").addr  # the manager: 2377 (cluster API) and 2380 (etcd peers)
    reserved = [f"{h1}:2377", f"{h1}:2380"]
    closed = [*reserved, "172.18.0.1:2377"]
    out = probe(lab, ("h1", "b1"), "connect", *closed)
    assert sorted(out.splitlines()) == sorted(f"{t} closed" for t in closed)
    # a port a container publishes stays reachable from another node, a LAN address, and the
    # container's own bridge (hairpin)
    published = f"{h1}:8089"
    for where in (("h2", "b2"), ("h1", "l1"), ("h2", "m2")):
        out = probe(lab, where, "connect", *closed, published)
        expected = [f"{t} closed" for t in closed] + [f"{published} open"]
        assert sorted(out.splitlines()) == sorted(expected), where
    # the ports are there: a LAN host (here, as joining nodes do) reaches them
    lan = probe(lab, ("c1", None), "connect", *reserved)
    assert sorted(lan.splitlines()) == sorted(f"{t} open" for t in reserved)


def test_containers_cannot_reach_the_hosts_loopback_through_its_bridges(lab: LabRig) -> None:
    # route_localnet (for published ports on 127.0.0.1) would let a crafted packet to
    # 127.0.0.1 in: etcd's client port, or anything else bound to the host's loopback
    for where, iface in ((("h1", "b1"), "eth1"), (("h1", "l1"), "eth0")):
        for port in ("2379", "9"):
            assert probe(lab, where, "loopback", iface, port).strip() == "silent", (where, port)


def test_ferrys_own_ports_cannot_be_published(lab: LabRig) -> None:
    run = lab.ferry("h1", "run", "-d", "--network", "lbr", "-p", "51820:80/udp",
                    "tools", "sleep", "60", check=False)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().endswith(
        "port 51820/udp is reserved by Ferry (WireGuard): publish another"
    )
    for spec in ("4789:80/udp", "published=2377,target=80,mode=host"):
        svc = lab.ferry("h1", "service", "create", "-d", "--name", "thief", "-p", spec,
                        "tools", "sleep", "60", check=False)  # fmt: skip
        assert svc.returncode == 2
        assert "is reserved by Ferry" in svc.stderr
    assert "thief" not in lab.ferry("h1", "service", "ls").stdout
    # another protocol on the same number takes nothing from Ferry
    ok = lab.ferry("h1", "run", "-d", "--rm", "--network", "lbr", "-p", "51820:80/tcp",
                   "tools", "sleep", "60")  # fmt: skip
    lab.ferry("h1", "rm", "-f", ok.stdout.strip())
