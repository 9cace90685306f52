"""Issue 5: published ports, the ingress routing mesh, and the egress bridge."""

from __future__ import annotations

import collections
import subprocess
from collections.abc import Iterator

import pytest

from ferry.kernel import nsfs
from ferry.lab.apps import WHOAMI
from tests.integration.lablib import TOOLS, LabRig, new_lab, running, wait_until

UDP_ECHO = (
    "import socket, os\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('', 9053))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(2048)\n"
    "    s.sendto(socket.gethostname().encode() + b':' + data, peer)\n"
)


UDP_LOG = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('', 9999))\n"
    "while True:\n"
    "    print(s.recvfrom(2048)[0].decode())\n"
)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3, clients=1) as rig:
        rig.form_swarm()
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "front")
        rig.ferry(
            "h1", "network", "create", "-d", "overlay", "--attachable", "--internal", "sealed"
        )
        rig.ferry(
            "h1", "service", "create", "--name", "web", "--network", "front", "-p", "8080:80",
            "--replicas", "2", "--constraint", "node.hostname!=h3", TOOLS, "python3", "-c", WHOAMI,
        )  # fmt: skip
        yield rig


def from_client(lab: LabRig, script: str) -> list[str]:
    out = lab.exec("c1", "sh", "-c", script, timeout_s=60).stdout
    return [line for line in out.splitlines() if line.strip()]


def host_addr(lab: LabRig, host: str) -> str:
    return lab.topo.node(host).addr


def test_the_port_answers_on_every_node_even_one_without_a_replica(lab: LabRig) -> None:
    for host in ("h1", "h2", "h3"):
        answers = from_client(lab, f"curl -s -m 3 http://{host_addr(lab, host)}:8080/; echo")
        assert answers and answers[0].strip(), f"no answer from {host}"
    hosts_running = {t["NodeID"] for t in running(lab, "web")}
    assert lab.api("h3", "/info")["Swarm"]["NodeID"] not in hosts_running


def test_requests_through_the_mesh_spread_over_both_replicas(lab: LabRig) -> None:
    target = host_addr(lab, "h3")
    answers = from_client(
        lab, f"for i in $(seq 300); do curl -s -m 2 http://{target}:8080/; echo; done"
    )
    counts = collections.Counter(answers)
    assert sum(counts.values()) == 300
    assert len(counts) == 2, counts
    assert max(counts.values()) / min(counts.values()) <= 1.3, counts


def test_udp_ports_are_published_too(lab: LabRig) -> None:
    lab.ferry(
        "h1", "service", "create", "--name", "echo", "--network", "front",
        "-p", "5353:9053/udp", TOOLS, "python3", "-c", UDP_ECHO,
    )  # fmt: skip
    try:
        script = (
            'python3 -c "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); '
            f"s.settimeout(3); s.sendto(b'ping', ('{host_addr(lab, 'h2')}', 5353)); "
            'print(s.recvfrom(100)[0].decode())"'
        )
        [answer] = from_client(lab, script)
        assert answer.endswith(":ping")
    finally:
        lab.ferry("h1", "service", "rm", "echo")


def test_a_standalone_container_publishes_on_its_own_host(lab: LabRig) -> None:
    lab.ferry("h2", "run", "-d", "--network", "front", "--name", "solo", "-p", "8081:80",
              TOOLS, "python3", "-c", WHOAMI)  # fmt: skip
    try:
        wait_until(
            lambda: from_client(lab, f"curl -s -m 2 http://{host_addr(lab, 'h2')}:8081/; echo"),
            10,
            "the published port to answer",
        )
        ps = lab.ferry("h2", "ps").stdout
        assert "0.0.0.0:8081->80/tcp" in ps
        clash = lab.ferry("h2", "run", "-d", "--name", "clash", "-p", "8081:80", TOOLS, "true",
                          check=False)  # fmt: skip
        assert "port is already allocated" in clash.stderr
        mesh_clash = lab.ferry("h2", "run", "-d", "--name", "clash2", "-p", "8080:80", TOOLS,
                               "true", check=False)  # fmt: skip
        assert "port is already allocated" in mesh_clash.stderr
    finally:
        lab.ferry("h2", "rm", "-f", "solo")


def test_containers_reach_the_outside_through_egress_but_not_from_internal_networks(
    lab: LabRig,
) -> None:
    server = subprocess.Popen(  # bounded: at most 60 s, inside the client namespace
        ["nsenter", f"--net=/run/netns/{lab.name}-c1", "timeout", "60", "python3", "-m",
         "http.server", "9000", "--bind", host_addr(lab, "c1")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lab.ferry("h2", "run", "-d", "--network", "front", "--name", "out", TOOLS, "sleep", "600")
        lab.ferry("h2", "run", "-d", "--network", "sealed", "--name", "in", TOOLS, "sleep", "600")
        url = f"http://{host_addr(lab, 'c1')}:9000/"

        def reaches(container: str) -> bool:
            result = lab.ferry("h2", "exec", container, "curl", "-s", "-m", "2", "-o", "/dev/null",
                               "-w", "%{http_code}", url, check=False)  # fmt: skip
            return result.stdout.strip() == "200"

        wait_until(lambda: reaches("out"), 10, "egress to the lab client")
        assert not reaches("in"), "a container on an internal network got out"
        routes = lab.ferry("h2", "exec", "in", "ip", "route").stdout
        assert "default" not in routes
    finally:
        server.kill()
        server.wait()
        for name in ("out", "in"):
            lab.ferry("h2", "rm", "-f", name, check=False)


def test_scaled_to_zero_refuses_and_scaled_back_works(lab: LabRig) -> None:
    target = host_addr(lab, "h1")
    lab.ferry("h1", "service", "scale", "web=0")
    try:
        refused = lab.exec("c1", "curl", "-s", "-m", "3", f"http://{target}:8080/", check=False)
        assert refused.returncode == 7, refused  # curl: connection refused, at once
    finally:
        lab.ferry("h1", "service", "scale", "web=2")
    assert from_client(lab, f"curl -s -m 3 http://{target}:8080/; echo")


def test_bad_and_conflicting_ports_are_refused_clearly(lab: LabRig) -> None:
    cases = [
        (["-p", "8080:80"], "already published by service web"),
        (["-p", "0:80"], "invalid published port"),
        (["-p", "70000:80"], "1 to 65535"),
        (["-p", "8090:80/sctp"], "tcp or udp"),
        (["-p", "2377:80"], "port 2377/tcp is reserved by Ferry (cluster API): publish another"),
        (["--publish", "published=8091,target=80,mode=sideways"], "publish mode"),
    ]
    for args, message in cases:
        result = lab.ferry("h1", "service", "create", "-d", "--name", "bad", *args, TOOLS,
                           "true", check=False)  # fmt: skip
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
    assert "bad" not in lab.ferry("h1", "service", "ls").stdout


def test_a_port_in_use_on_a_node_is_refused_to_the_mesh(lab: LabRig) -> None:
    lab.ferry("h2", "run", "-d", "--name", "holder", "-p", "8096:80", "tools", "sleep", "600")
    try:

        def refused() -> str | None:  # the node reports its ports with its next heartbeat
            result = lab.ferry("h1", "service", "create", "-d", "--name", "bad", "-p",
                               "8096:80", "tools", "true", check=False)  # fmt: skip
            if result.returncode == 0:  # created before h2 reported the port: try again
                lab.ferry("h1", "service", "rm", "bad")
                return None
            assert "already in use on node h2" in result.stderr, result.stderr
            return result.stderr

        wait_until(refused, 15, "the port held on h2 to be refused")
    finally:
        lab.ferry("h2", "rm", "-f", "holder")


def test_host_mode_opens_the_port_only_where_a_task_runs(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "--name", "pinned", "--network", "front", "--publish",
              "published=8095,target=80,mode=host", "--constraint", "node.hostname==h3",
              TOOLS, "python3", "-c", WHOAMI)  # fmt: skip
    try:
        assert from_client(lab, f"curl -s -m 3 http://{host_addr(lab, 'h3')}:8095/; echo")
        missed = lab.exec("c1", "curl", "-s", "-m", "2", f"http://{host_addr(lab, 'h1')}:8095/",
                          check=False)  # fmt: skip
        assert missed.returncode != 0
        task_line = lab.ferry("h1", "service", "ps", "pinned").stdout.splitlines()[1]
        assert "Running" in task_line and task_line.endswith("*:8095->80/tcp")
    finally:
        lab.ferry("h1", "service", "rm", "pinned")


def test_network_ls_shows_ingress_the_egress_bridge_and_overlays(lab: LabRig) -> None:
    out = lab.ferry("h1", "network", "ls").stdout
    expected = (
        ("ingress", "overlay", "swarm"),
        ("ferry_gwbridge", "bridge", "local"),
        ("front", "overlay", "swarm"),
    )
    for name, driver, scope in expected:
        line = next(line for line in out.splitlines() if f" {name} " in f" {line} ")
        assert driver in line and scope in line


def test_a_container_reaches_the_published_port_on_its_own_node(lab: LabRig) -> None:
    """Docker's routing mesh answers a container that calls its own node's address (hairpin
    through the egress bridge), on a node with a replica (h1) and one without (h3)."""
    for host in ("h1", "h3"):
        name = f"hair{host}"
        lab.ferry(host, "run", "-d", "--network", "front", "--name", name, TOOLS, "sleep", "600")
        try:
            for target in ("h1", "h2", "h3"):
                answer = lab.ferry(host, "exec", name, "curl", "-s", "-m", "3", "-o", "/dev/null",
                                   "-w", "%{http_code}", f"http://{host_addr(lab, target)}:8080/",
                                   check=False).stdout  # fmt: skip
                assert answer == "200", (host, target, answer)
        finally:
            lab.ferry(host, "rm", "-f", name, check=False)


def test_the_ingress_sandbox_routes_no_container_elsewhere(lab: LabRig) -> None:
    """The sandbox's port on the egress bridge is reachable by containers (for the hairpin
    above), so it must forward nothing it did not translate: a container that routes the
    ingress overlay or another container through it reaches neither."""
    ingress = [a["Addresses"][0].split("/")[0] for t in running(lab, "web")
               for a in t["NetworksAttachments"]
               if a["Network"]["Spec"]["Name"] == "ingress"]  # fmt: skip
    assert ingress, running(lab, "web")
    lab.ferry("h1", "run", "-d", "--network", "front", "--name", "router", "--cap-add",
              "NET_ADMIN", TOOLS, "sleep", "600")  # fmt: skip
    # another container, on the egress bridge too (its second interface), logging what
    # reaches it: one-way datagrams show a forward even when no reply could come back
    lab.ferry("h1", "run", "-d", "--network", "front", "--name", "victim", TOOLS, "python3",
              "-u", "-c", UDP_LOG)  # fmt: skip
    try:
        shown = lab.ferry("h1", "exec", "victim", "ip", "-4", "-o", "addr", "show", "eth1").stdout
        victim = shown.split()[3].split("/")[0]
        assert victim.startswith("172.18."), shown
        send = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"[s.sendto(b'through-the-sandbox', ('{victim}', 9999)) for _ in range(5)]"
        )
        script = (
            f"ip route add {ingress[0]}/32 via 172.18.0.2 && "
            f'ip route add {victim}/32 via 172.18.0.2 && python3 -c "{send}" && '
            f"curl -s -m 3 -o /dev/null -w %{{http_code}} http://{ingress[0]}:80/"
        )
        tried = lab.ferry("h1", "exec", "router", "sh", "-c", script, check=False)
        assert tried.stdout == "000", tried
        direct = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.sendto(b'marker', ('127.0.0.1', 9999))"
        )  # the log works: it shows this
        lab.ferry("h1", "exec", "victim", "python3", "-c", direct)
        wait_until(lambda: "marker" in lab.ferry("h1", "logs", "victim").stdout, 10, "marker")
        assert "through-the-sandbox" not in lab.ferry("h1", "logs", "victim").stdout
    finally:
        for name in ("router", "victim"):
            lab.ferry("h1", "rm", "-f", name, check=False)


def test_a_restarted_ferryd_keeps_the_mesh_and_removal_leaves_no_rule(lab: LabRig) -> None:
    from ferry.lab import lab as labmod

    target = host_addr(lab, "h3")
    labmod.stop_ferryd(lab.topo, "h3")
    try:
        assert from_client(lab, f"curl -s -m 3 http://{target}:8080/; echo")  # no ferryd on h3
    finally:
        labmod.start_ferryd(lab.topo, "h3")
    assert from_client(lab, f"curl -s -m 3 http://{target}:8080/; echo")
    lab.ferry("h1", "service", "rm", "web")

    def no_port_rule() -> bool:
        for host in ("h1", "h2", "h3"):
            netns = nsfs.netns_path(f"{lab.name}-{host}")
            ruleset = subprocess.run(
                ["nsenter", f"--net={netns}", "nft", "list", "ruleset"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            if "8080" in ruleset:
                return False
        return True

    wait_until(no_port_rule, 10, "every rule for port 8080 to go")
