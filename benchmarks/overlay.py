"""Overlay figures: throughput and RTT against the underlay and a hand-built kernel VXLAN,
convergence of a new container's name, 200 containers on one overlay, and the embedded DNS.

What it measures, in one run on a 3-host lab "bov" (underlay 10.95.0.0/24):

1. iperf3 TCP (5 s x 3 runs, interleaved, median) and ping RTT (median of 50 pings at 10 ms;
   3 interleaved rounds, median of the rounds)
   (a) host to host on the lab underlay (h2 -> h1);
   (b) a hand-built kernel VXLAN over the same lab underlay, between lab hosts h3 and h2:
       in each, a vxlan device made in the host namespace (VNI 4242, nolearning, proxy, static
       FDB and neighbours) and moved into a sandbox ``bovx-s*`` with br0 and a veth to an
       endpoint namespace ``bovx-e*``, MTU 1450 — Ferry's topology without Ferry: the physical
       limit of any VXLAN overlay here. For information, also the same VXLAN over a plain veth
       pair (``vxlan_veth``, no bridge hop in its underlay) and that veth pair itself;
   (c) container to container on a Ferry overlay (h3 -> h2).
2. Convergence (20 times): from just before a container ``cN`` is created and started on h2
   (local API) until a container on h1, pinging ``cN`` in a loop, sees the first reply.
3. Scale: 200 containers on the overlay over 3 hosts (4 creates in flight per host): time until
   all are reachable from a container on another host, time per create+start, FDB entries in
   each host's overlay sandbox, ferryd RSS per host.
4. DNS: sequential latency of 1 000 queries from inside a container, and dnsperf for 10 s with
   -Q 20000 and without a rate limit.

Every figure is printed next to its target with pass/fail, and written to
benchmarks/results/overlay.json. Needs root, iperf3, dnsperf.

Run from the repository root: .venv/bin/python -m benchmarks.overlay
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.common import (
    FERRY,
    close_figures,
    dnsperf_figures,
    ferry,
    ferry_env,
    join_swarm,
    lab,
    lab_exec,
    median,
    opening_figures,
    percentile,
    progress,
    record_runs,
    rss_kib,
    run,
    write,
)
from ferry.api.client import ApiClient
from ferry.lab import lab as labmod
from ferry.lab.topology import LabTopology

NAME = "bov"
SUBNET = "10.95.0.0/24"
NET = "benchnet"
RUNS = 3
IPERF_S = 5
PINGS = 50
CONVERGE_N = 20
SCALE_N = 200
SCALE_IN_FLIGHT = 4  # per host
REACH_DEADLINE_S = 90
DNS_QUERIES = 1000
DNS_WARMUP = 100
DNSPERF_S = 10

# The hand-built references: on the lab's hosts h3/h2, and on two "hosts" of their own joined
# by a veth pair; one endpoint netns each.
VX = "bovx"
VX_VNI = 4242
VX_LAB_HOSTS = ("h2", "h3")  # same pair as Ferry's (c): server side first
VX_UNDERLAY = ("192.0.2.1", "192.0.2.2")  # TEST-NET-1: inside bovx-h* only
VX_OVERLAY = ("198.51.100.1", "198.51.100.2")  # TEST-NET-2: inside bovx-e* only
VX_MACS = ("02:95:00:00:00:01", "02:95:00:00:00:02")
OVERLAY_MTU = 1450

# Runs inside a container (host image, system python3): raw ICMP echo to every target, again
# every 200 ms to those that have not answered, until all did or the deadline passed.
REACH_SCRIPT = r"""
import json, os, select, socket, struct, sys, time
deadline = time.monotonic() + float(sys.argv[1])
targets = set(sys.argv[2:])
pending = set(targets)
ident = os.getpid() & 0xFFFF
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def packet(seq):
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xFFFF) + b"ferry-bench!"
    s = sum(struct.unpack("!%dH" % (len(body) // 2), body))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return body[:2] + struct.pack("!H", ~s & 0xFFFF) + body[4:]
start = time.monotonic()
seq = 0
while pending and time.monotonic() < deadline:
    seq += 1
    for ip in list(pending):
        try:
            sock.sendto(packet(seq), (ip, 0))
        except OSError:
            pass
    until = time.monotonic() + 0.2
    while pending and (left := until - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        data, addr = sock.recvfrom(2048)
        ihl = (data[0] & 0x0F) * 4
        kind, _code, _sum, rid = struct.unpack("!BBHH", data[ihl:ihl + 6])
        if kind == 0 and rid == ident:
            pending.discard(addr[0])
print(json.dumps({"reached": len(targets) - len(pending), "missing": sorted(pending),
                  "elapsed_s": time.monotonic() - start}))
"""

# Runs inside a container: sequential A queries over UDP to 127.0.0.11, a hand-built packet.
DNS_SCRIPT = r"""
import json, socket, struct, sys, time
total, warmup, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.11", 53))
sock.settimeout(2)
samples = []
for i in range(warmup + total):
    qid = i & 0xFFFF
    packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    start = time.perf_counter()
    sock.send(packet)
    reply = sock.recv(4096)
    elapsed = time.perf_counter() - start
    rid, flags, _qd, ancount = struct.unpack("!HHHH", reply[:8])
    assert rid == qid and flags & 0x0F == 0 and ancount >= 1, reply
    if i >= warmup:
        samples.append(elapsed)
print(json.dumps(samples))
"""


# --- processes ------------------------------------------------------------------------------
def in_vx(ns: str, *cmd: str, timeout_s: float = 60) -> str:
    return run(["ip", "netns", "exec", f"{VX}-{ns}", *cmd], timeout_s)


def api(topo: LabTopology, host: str) -> ApiClient:
    return ApiClient(f"unix://{topo.node(host).socket}", timeout_s=120)


# --- the hand-built kernel VXLAN ------------------------------------------------------------
def vx_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{VX}-")]


def vx_teardown() -> None:
    """Kill what runs in the bovx namespaces (our iperf3 servers), veths first, then the netns."""
    for ns in vx_namespaces():
        pids = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
    for ns in vx_namespaces():
        links = subprocess.run(
            ["ip", "-n", ns, "-o", "link", "show"], capture_output=True, text=True, check=False
        ).stdout
        for line in links.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name != "lo":
                subprocess.run(["ip", "-n", ns, "link", "del", name], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def ipn(ns: str, *args: str) -> None:
    run(["ip", "-n", ns, *args])


def vx_build(tag: str = "", bridged: bool = False) -> None:
    """Namespaces ``bovx-<tag>{h1,h2,e1,e2}``; their underlay is one veth pair, or with
    ``bridged`` a veth from each host to bridge ul0 in ``bovx-<tag>ul``, like the lab's."""
    h = (f"{VX}-{tag}h1", f"{VX}-{tag}h2")
    e = (f"{VX}-{tag}e1", f"{VX}-{tag}e2")
    for ns in (*h, *e):
        run(["ip", "netns", "add", ns])
        ipn(ns, "link", "set", "lo", "up")
    if bridged:
        ul = f"{VX}-{tag}ul"
        run(["ip", "netns", "add", ul])
        ipn(ul, "link", "add", "ul0", "type", "bridge")
        ipn(ul, "link", "set", "ul0", "up")
        for i in (0, 1):
            ipn(
                ul, "link", "add", f"h{i + 1}", "type", "veth", "peer", "name", "ul0", "netns", h[i]
            )
            ipn(ul, "link", "set", f"h{i + 1}", "master", "ul0", "up")
    else:
        ipn(h[0], "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", h[1])
    mtu = str(OVERLAY_MTU)
    for i in (0, 1):
        j = 1 - i
        ipn(h[i], "link", "set", "ul0", "mtu", "1500", "up")
        ipn(h[i], "addr", "add", f"{VX_UNDERLAY[i]}/24", "dev", "ul0")
        # like Ferry's sandbox: vxlan0 (nolearning proxy) -> br0 -> veth -> endpoint netns
        vxlan = ("id", str(VX_VNI), "dstport", "4789", "local", VX_UNDERLAY[i])
        ipn(h[i], "link", "add", "vxlan0", "type", "vxlan", *vxlan, "nolearning", "proxy")
        ipn(h[i], "link", "add", "br0", "type", "bridge")
        ipn(h[i], "link", "set", "br0", "mtu", mtu)
        ipn(h[i], "link", "set", "vxlan0", "master", "br0", "mtu", mtu)
        run(["bridge", "-n", h[i], "link", "set", "dev", "vxlan0", "learning", "off"])
        peer = ("peer", "name", "eth0", "netns", e[i])
        ipn(h[i], "link", "add", "ve0", "mtu", mtu, "type", "veth", *peer)
        ipn(h[i], "link", "set", "ve0", "master", "br0", "up")
        run(["ip", "netns", "exec", h[i], "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"])
        ipn(h[i], "link", "set", "vxlan0", "up")
        ipn(h[i], "link", "set", "br0", "up")
        ipn(e[i], "link", "set", "eth0", "address", VX_MACS[i], "mtu", mtu)
        ipn(e[i], "addr", "add", f"{VX_OVERLAY[i]}/24", "dev", "eth0")
        ipn(e[i], "link", "set", "eth0", "up")
        fdb = (VX_MACS[j], "dev", "vxlan0", "dst", VX_UNDERLAY[j], "self", "permanent")
        run(["bridge", "-n", h[i], "fdb", "replace", *fdb])
        neigh = (VX_OVERLAY[j], "lladdr", VX_MACS[j], "dev", "vxlan0", "nud", "permanent")
        ipn(h[i], "neigh", "replace", *neigh)


def vx_build_on_lab(topo: LabTopology) -> None:
    """``bovx-l{s,e}{1,2}``: Ferry's per-host topology, by hand, on lab hosts h2 and h3."""
    hosts = [topo.node(h) for h in VX_LAB_HOSTS]
    sandboxes = (f"{VX}-ls1", f"{VX}-ls2")
    endpoints = (f"{VX}-le1", f"{VX}-le2")
    mtu = str(OVERLAY_MTU)
    for i, host in enumerate(hosts):
        j = 1 - i
        sb, ep = sandboxes[i], endpoints[i]
        for ns in (sb, ep):
            run(["ip", "netns", "add", ns])
            ipn(ns, "link", "set", "lo", "up")
        vxlan = ("id", str(VX_VNI), "dstport", "4789", "local", host.addr, "nolearning", "proxy")
        ipn(host.netns, "link", "add", "bvx4242", "type", "vxlan", *vxlan)
        ipn(host.netns, "link", "set", "bvx4242", "netns", sb)
        ipn(sb, "link", "set", "bvx4242", "name", "vxlan0")
        ipn(sb, "link", "add", "br0", "type", "bridge")
        ipn(sb, "link", "set", "br0", "mtu", mtu)
        ipn(sb, "link", "set", "vxlan0", "master", "br0", "mtu", mtu)
        run(["bridge", "-n", sb, "link", "set", "dev", "vxlan0", "learning", "off"])
        ipn(
            sb,
            "link",
            "add",
            "ve0",
            "mtu",
            mtu,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ep,
        )
        ipn(sb, "link", "set", "ve0", "master", "br0", "up")
        run(["ip", "netns", "exec", sb, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"])
        ipn(sb, "link", "set", "vxlan0", "up")
        ipn(sb, "link", "set", "br0", "up")
        ipn(ep, "link", "set", "eth0", "address", VX_MACS[i], "mtu", mtu)
        ipn(ep, "addr", "add", f"{VX_OVERLAY[i]}/24", "dev", "eth0")
        ipn(ep, "link", "set", "eth0", "up")
        fdb = (VX_MACS[j], "dev", "vxlan0", "dst", hosts[j].addr, "self", "permanent")
        run(["bridge", "-n", sb, "fdb", "replace", *fdb])
        neigh = (VX_OVERLAY[j], "lladdr", VX_MACS[j], "dev", "vxlan0", "nud", "permanent")
        ipn(sb, "neigh", "replace", *neigh)


@contextlib.contextmanager
def vxlan_reference(topo: LabTopology) -> Iterator[None]:
    vx_teardown()  # left over by a crashed run
    try:
        vx_build_on_lab(topo)
        vx_build()
        yield
    finally:
        vx_teardown()


# --- throughput and RTT ---------------------------------------------------------------------
Runner = Callable[..., str]


def iperf_gbps(client: Runner, target: str) -> float:
    argv = ["iperf3", "-c", target, "-t", str(IPERF_S), "-J", "--connect-timeout", "3000"]
    for attempt in range(10):
        try:
            out = client(*argv, timeout_s=IPERF_S + 30)
            return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
        except RuntimeError as exc:  # the server may still be starting
            if attempt == 9 or "refused" not in str(exc):
                raise
            time.sleep(0.3)
    raise AssertionError("unreachable")


def ping_ms(client: Runner, target: str) -> float:
    out = client("ping", "-i", "0.01", "-c", str(PINGS), "-w", "15", target, timeout_s=30)
    times = [float(t) for t in re.findall(r"time=([0-9.]+) ms", out)]
    if len(times) < PINGS * 0.9:
        raise RuntimeError(f"ping to {target}: only {len(times)} replies of {PINGS}")
    return median(times)


def container_ip(topo: LabTopology, host: str, container: str) -> str:
    info = api(topo, host).get(f"/containers/{container}/json")
    return str(info["NetworkSettings"]["Networks"][NET]["IPAddress"])


def measure_paths(topo: LabTopology) -> dict[str, Any]:
    h1 = topo.node("h1").addr

    def on_lab(host: str) -> Runner:
        return lambda *cmd, timeout_s=60: lab_exec(topo, host, *cmd, timeout_s=timeout_s)

    def on_vx(ns: str) -> Runner:
        return lambda *cmd, timeout_s=60: in_vx(ns, *cmd, timeout_s=timeout_s)

    def in_container(host: str, name: str) -> Runner:
        return lambda *cmd, timeout_s=60: ferry(topo, host, "exec", name, *cmd, timeout_s=timeout_s)

    # servers: daemonized iperf3 (killed by the lab's and the bovx teardown)
    lab_exec(topo, "h1", "iperf3", "-s", "-D")
    in_vx("le1", "iperf3", "-s", "-D")
    in_vx("e1", "iperf3", "-s", "-D")
    in_vx("h1", "iperf3", "-s", "-D")
    ferry(topo, "h2", "exec", "-d", "bench-s2", "iperf3", "-s")
    paths: dict[str, tuple[Runner, str]] = {
        "underlay": (on_lab("h2"), h1),
        "vxlan": (on_vx("le2"), VX_OVERLAY[0]),
        "ferry": (in_container("h3", "bench-c3"), container_ip(topo, "h2", "bench-s2")),
        "vxlan_veth": (on_vx("e2"), VX_OVERLAY[0]),
        "veth_underlay": (on_vx("h2"), VX_UNDERLAY[0]),
    }
    figures: dict[str, Any] = {}
    rtts: dict[str, list[float]] = {key: [] for key in paths}
    runs: dict[str, list[float]] = {key: [] for key in paths}
    # Interleaved rounds, so a noisy moment hits every path alike: the RTT of a round is the
    # median of its 50 pings, the figure the median of the rounds (throughput alike).
    for _ in range(RUNS):
        for key, (client, target) in paths.items():
            rtts[key].append(ping_ms(client, target))
    for _ in range(RUNS):
        for key, (client, target) in paths.items():
            runs[key].append(iperf_gbps(client, target))
    for key in paths:
        record_runs(figures, f"{key}_rtt_ms", rtts[key], 4)
        record_runs(figures, f"{key}_gbps", runs[key], 2)
    figures["ferry_vs_vxlan_tput_ratio"] = figures["ferry_gbps"] / figures["vxlan_gbps"]
    figures["ferry_vs_vxlan_veth_tput_ratio"] = figures["ferry_gbps"] / figures["vxlan_veth_gbps"]
    figures["ferry_vs_underlay_tput_ratio"] = figures["ferry_gbps"] / figures["underlay_gbps"]
    figures["vxlan_vs_underlay_tput_ratio"] = figures["vxlan_gbps"] / figures["underlay_gbps"]
    figures["ferry_minus_vxlan_rtt_us"] = (figures["ferry_rtt_ms"] - figures["vxlan_rtt_ms"]) * 1e3
    return figures


# --- convergence ----------------------------------------------------------------------------
def read_line(fd: int, timeout_s: float) -> str:
    """One line from a pipe, byte by byte: nothing beyond it is taken from the pipe."""
    deadline = time.monotonic() + timeout_s
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError("no output from the pinger in time")
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode()


def create_start(client: ApiClient, name: str) -> str:
    body = {
        "Image": "tools",
        "Cmd": ["sleep", "3600"],
        "HostConfig": {"NetworkMode": NET},
        "NetworkingConfig": {"EndpointsConfig": {NET: {}}},
    }
    cid = str(client.post("/containers/create", body, name=name)["Id"])
    client.post(f"/containers/{cid}/start")
    return cid


def measure_convergence(topo: LabTopology) -> dict[str, Any]:
    h2 = api(topo, "h2")
    samples: list[float] = []
    inner: list[float] = []
    api_times: list[float] = []
    created: list[str] = []
    try:
        for n in range(1, CONVERGE_N + 1):
            name = f"c{n}"
            loop = f"echo ready; until ping -c1 -W 0.05 {name} >/dev/null 2>&1; do :; done; "
            pinger = subprocess.Popen(
                [FERRY, "exec", "bench-h1", "timeout", "20", "sh", "-c", loop + "date +%s.%N"],
                env=ferry_env(topo, "h1"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                assert pinger.stdout is not None
                if read_line(pinger.stdout.fileno(), 20).strip() != "ready":
                    raise RuntimeError("the pinger did not start")
                wall0 = time.time()
                start = time.perf_counter()
                created.append(create_start(h2, name))
                api_times.append(time.perf_counter() - start)
                out, err = pinger.communicate(timeout=30)
                samples.append(time.perf_counter() - start)
                if pinger.returncode != 0:
                    raise RuntimeError(f"{name} never answered from h1: {err.strip()}")
                inner.append(float(out.split()[-1]) - wall0)
            finally:
                if pinger.poll() is None:
                    pinger.kill()
                    pinger.wait()
    finally:
        for cid in created:
            with contextlib.suppress(Exception):
                h2.delete(f"/containers/{cid}", force=True)
    return {
        "convergence_p50_ms": median(samples) * 1e3,
        "convergence_p95_ms": percentile(samples, 95) * 1e3,
        "convergence_max_ms": max(samples) * 1e3,
        "convergence_samples_ms": [round(s * 1e3, 1) for s in samples],
        "convergence_first_reply_p50_ms": median(inner) * 1e3,
        "convergence_first_reply_p95_ms": percentile(inner, 95) * 1e3,
        "convergence_create_start_p50_ms": median(api_times) * 1e3,
    }


# --- DNS ------------------------------------------------------------------------------------
def dns_sequential(topo: LabTopology, container: str = "bench-h1") -> list[float]:
    out = ferry(
        topo,
        "h1",
        "exec",
        container,
        "/usr/bin/python3",
        "-c",
        DNS_SCRIPT,
        str(DNS_QUERIES),
        str(DNS_WARMUP),
        "bench-s2",
        timeout_s=60,
    )
    return [float(s) for s in json.loads(out)]


def measure_dns(topo: LabTopology) -> dict[str, Any]:
    samples = dns_sequential(topo)
    figures: dict[str, Any] = {
        "dns_seq_queries": len(samples),
        "dns_seq_p50_ms": median(samples) * 1e3,
        "dns_seq_p99_ms": percentile(samples, 99) * 1e3,
    }
    # the host image sees the host's filesystem: the query file is readable inside
    with tempfile.NamedTemporaryFile("w", prefix="bov-dnsperf-", suffix=".txt") as data:
        data.write("bench-s2 A\nbench-c3 A\nbench-h1 A\nbench-s2.benchnet A\n")
        data.flush()
        os.chmod(data.name, 0o644)
        for label, extra in (("q20000", ["-Q", "20000"]), ("unlimited", [])):
            out = ferry(
                topo,
                "h1",
                "exec",
                "bench-h1",
                "timeout",
                str(DNSPERF_S + 20),
                "dnsperf",
                *("-s", "127.0.0.11", "-l", str(DNSPERF_S), "-d", data.name, "-c", "4"),
                *extra,
                timeout_s=DNSPERF_S + 40,
            )
            for key, value in dnsperf_figures(out).items():
                figures[f"dnsperf_{label}_{key}"] = value
    return figures


# --- scale ----------------------------------------------------------------------------------
def sandbox_counts(topo: LabTopology, net_id: str) -> dict[str, dict[str, int]]:
    counts = {}
    for host in topo.hosts:
        ns = f"{host.netns_prefix}ov-{net_id[:12]}"
        fdb = run(["bridge", "-n", ns, "fdb", "show", "dev", "vxlan0"])
        neigh = run(["ip", "-n", ns, "neigh", "show", "dev", "vxlan0"])
        counts[host.name] = {
            "fdb": sum(1 for line in fdb.splitlines() if " dst " in line),
            "neigh": sum(1 for line in neigh.splitlines() if "PERMANENT" in line),
        }
    return counts


def reach(topo: LabTopology, host: str, container: str, ips: list[str]) -> subprocess.Popen[str]:
    deadline = [str(REACH_DEADLINE_S)]
    return subprocess.Popen(
        [FERRY, "exec", container, "/usr/bin/python3", "-c", REACH_SCRIPT, *deadline, *ips],
        env=ferry_env(topo, host),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ferryd_rss_mib(topo: LabTopology) -> dict[str, float]:
    out = {}
    for host in topo.hosts:
        pid = labmod.ferryd_pid(host)
        out[host.name] = rss_kib(pid) / 1024 if pid else float("nan")
    return out


def measure_scale(topo: LabTopology) -> dict[str, Any]:
    net_id = str(api(topo, "h1").get(f"/networks/{NET}")["Id"])
    rss_before = ferryd_rss_mib(topo)
    hosts = [h.name for h in topo.hosts]
    names = {h: [f"s{i}" for i in range(SCALE_N) if hosts[i % len(hosts)] == h] for h in hosts}
    timings: list[float] = []
    lock = threading.Lock()

    def one(host: str, name: str) -> None:
        start = time.perf_counter()
        create_start(api(topo, host), name)
        with lock:
            timings.append(time.perf_counter() - start)

    pools = {
        h: concurrent.futures.ThreadPoolExecutor(SCALE_IN_FLIGHT, thread_name_prefix=h)
        for h in hosts
    }
    first = time.perf_counter()
    try:
        futures = [pools[h].submit(one, h, n) for h in hosts for n in names[h]]
        for future in futures:
            future.result(timeout=300)
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
    created_s = time.perf_counter() - first
    ips = {h: [container_ip(topo, h, n) for n in names[h]] for h in hosts}
    # every container is pinged from a container on another host
    checks = [
        reach(topo, "h1", "bench-h1", ips["h2"] + ips["h3"]),
        reach(topo, "h2", "bench-s2", ips["h1"]),
    ]
    reached = 0
    missing: list[str] = []
    for check in checks:
        out, err = check.communicate(timeout=REACH_DEADLINE_S + 30)
        if check.returncode != 0:
            raise RuntimeError(f"reachability check failed: {err.strip()}")
        result = json.loads(out)
        reached += result["reached"]
        missing += result["missing"]
    reachable_s = time.perf_counter() - first
    time.sleep(1)  # let the last peer updates land before counting
    counts = sandbox_counts(topo, net_id)
    rss = ferryd_rss_mib(topo)
    seq = dns_sequential(topo)
    return {
        "scale_containers": SCALE_N,
        "scale_containers_on_overlay": SCALE_N + 3,
        "scale_reached": reached,
        "scale_unreachable": missing,
        "scale_create_all_s": created_s,
        "scale_all_reachable_s": reachable_s,
        "scale_per_container_ms": created_s / SCALE_N * 1e3,
        "scale_create_start_p50_ms": median(timings) * 1e3,
        "scale_create_start_p95_ms": percentile(timings, 95) * 1e3,
        "scale_fdb_entries": {h: c["fdb"] for h, c in counts.items()},
        "scale_neigh_entries": {h: c["neigh"] for h, c in counts.items()},
        "ferryd_rss_mib_before": rss_before,
        "ferryd_rss_mib_at_scale": rss,
        "ferryd_rss_mib_max": max(rss.values()),
        "dns_seq_p50_ms_at_scale": median(seq) * 1e3,
        "dns_seq_p99_ms_at_scale": percentile(seq, 99) * 1e3,
    }


# --- lab set-up and the report --------------------------------------------------------------
def form_swarm(topo: LabTopology) -> None:
    join_swarm(topo)
    ferry(topo, "h1", "network", "create", "-d", "overlay", "--attachable", NET)
    for host, name in (("h1", "bench-h1"), ("h2", "bench-s2"), ("h3", "bench-c3")):
        ferry(topo, host, "run", "-d", "--network", NET, "--name", name, "tools", "sleep", "3600")


def verdicts(f: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    q = f["dnsperf_q20000_qps"]
    return [
        (
            "throughput ferry/vxlan",
            ">= 95 %",
            f"{f['ferry_vs_vxlan_tput_ratio']:.1%} ({f['ferry_gbps']:.2f} / "
            f"{f['vxlan_gbps']:.2f} Gbit/s)",
            f["ferry_vs_vxlan_tput_ratio"] >= 0.95,
        ),
        (
            "RTT ferry - vxlan",
            "<= 10 us",
            f"{f['ferry_minus_vxlan_rtt_us']:+.1f} us ({f['ferry_rtt_ms']:.3f} / "
            f"{f['vxlan_rtt_ms']:.3f} ms)",
            f["ferry_minus_vxlan_rtt_us"] <= 10,
        ),
        (
            "  info: ferry/vxlan_veth",
            "-",
            f"{f['ferry_vs_vxlan_veth_tput_ratio']:.1%} (VXLAN over a bare veth pair)",
            True,
        ),
        (
            "convergence p50",
            "<= 200 ms",
            f"{f['convergence_p50_ms']:.0f} ms",
            f["convergence_p50_ms"] <= 200,
        ),
        (
            "convergence p95",
            "<= 500 ms",
            f"{f['convergence_p95_ms']:.0f} ms",
            f["convergence_p95_ms"] <= 500,
        ),
        (
            "ferryd RSS at 200 containers",
            "<= 150 MB",
            f"{f['ferryd_rss_mib_max']:.1f} MiB (max of 3 hosts)",
            f["ferryd_rss_mib_max"] * 1.048576 <= 150,
        ),
        (
            "DNS sequential p50",
            "<= 0.3 ms",
            f"{f['dns_seq_p50_ms']:.3f} ms",
            f["dns_seq_p50_ms"] <= 0.3,
        ),
        ("DNS q/s (dnsperf -Q 20000)", ">= 8000", f"{q:.0f} q/s", q >= 8000),
    ]


def report(f: dict[str, Any]) -> None:
    print("\npath              Gbit/s (runs)                RTT ms (rounds)")
    for key in ("underlay", "vxlan", "ferry", "veth_underlay", "vxlan_veth"):
        runs = ", ".join(f"{v:.2f}" for v in f[f"{key}_gbps_runs"])
        rtts = ", ".join(f"{v:.3f}" for v in f[f"{key}_rtt_ms_runs"])
        print(f"{key:<16}  {f[f'{key}_gbps']:6.2f} ({runs:<19})  {f[f'{key}_rtt_ms']:.3f} ({rtts})")
    print(
        f"ratios: ferry/vxlan {f['ferry_vs_vxlan_tput_ratio']:.1%}, "
        f"ferry/vxlan_veth {f['ferry_vs_vxlan_veth_tput_ratio']:.1%}, "
        f"ferry/underlay {f['ferry_vs_underlay_tput_ratio']:.1%}, "
        f"vxlan/underlay {f['vxlan_vs_underlay_tput_ratio']:.1%}"
    )
    print(
        f"scale: {f['scale_containers']} containers created in {f['scale_create_all_s']:.1f} s "
        f"({f['scale_per_container_ms']:.0f} ms each overall, create+start p50 "
        f"{f['scale_create_start_p50_ms']:.0f} ms), all reachable after "
        f"{f['scale_all_reachable_s']:.1f} s ({f['scale_reached']} reached); "
        f"FDB {f['scale_fdb_entries']}; RSS MiB {f['ferryd_rss_mib_at_scale']}"
    )
    print(
        f"DNS: p50 {f['dns_seq_p50_ms']:.3f} ms, p99 {f['dns_seq_p99_ms']:.3f} ms; dnsperf "
        f"{f['dnsperf_q20000_qps']:.0f} q/s at -Q 20000, {f['dnsperf_unlimited_qps']:.0f} q/s "
        "unlimited"
    )
    print(f"\n{'figure':<34} {'target':<10} {'measured':<45} result")
    for name, target, measured, ok in verdicts(f):
        print(f"{name:<34} {target:<10} {measured:<45} {'PASS' if ok else 'FAIL'}")


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root")
    began = time.perf_counter()
    figures = opening_figures(NAME)
    with lab(NAME, 3, 0, SUBNET) as topo:
        form_swarm(topo)
        progress(began, "swarm formed")
        with vxlan_reference(topo):
            figures.update(measure_paths(topo))
        progress(began, "throughput and RTT measured")
        figures.update(measure_convergence(topo))
        progress(began, "convergence measured")
        figures.update(measure_dns(topo))
        progress(began, "DNS measured")
        figures.update(measure_scale(topo))
        progress(began, "scale measured")
    close_figures(figures, verdicts(figures), began, NAME)
    figures["note"] = (
        "iperf3/ping medians of interleaved runs; all ends share the same 2 vCPUs: compare "
        "paths with each other, not with real NICs. vxlan = hand-built kernel VXLAN with "
        "Ferry's topology (device made in the host netns, moved to a sandbox: vxlan0 -> br0 -> "
        "veth -> endpoint) on lab hosts h3 -> h2, over the same underlay as Ferry's (c); "
        "vxlan_veth = the same over a bare veth pair (its underlay has no bridge hop), info only."
    )
    report(figures)
    write("overlay", figures)


if __name__ == "__main__":
    main()
