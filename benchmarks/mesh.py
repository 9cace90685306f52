"""Routing-mesh figures: what the ingress mesh costs against reaching the task directly.

What it measures, in one run on a 3-host lab "bms" (underlay 10.93.0.0/24) with one client c1
(10.93.0.101, no ferryd: "the outside"); every client tool runs in c1 (``ferry lab exec c1``).
A swarm (h1 manager, h2/h3 workers), an overlay ``meshnet``, and two services of ONE replica
each, pinned to h2 (``--constraint node.hostname==h2``), each published twice:

- ``web``: a tiny HTTP/1.1 server (system python3, asyncio: one thread, keep-alive, each answer
  in one write, TCP_NODELAY), ingress mode on 8080 and host mode on 8081 (both to target 80);
- ``perf``: ``iperf3 -s``, ingress mode on 5201 and host mode on 5202 (both to target 5201).

The two paths to the same task:

- mesh: c1 -> h3:PUB (h3 runs no replica) -> h3's DNAT to its ingress sandbox -> the sandbox's
  DNAT + masquerade -> the ingress overlay (VXLAN) -> the task on h2;
- direct: c1 -> h2:PUB2 (host mode: one DNAT on h2 straight into the container). The outside
  cannot route to a task's overlay address at all: this is the most direct path it has.

1. HTTP, ``wrk -t2 -c16 -d5s --latency``: requests/s, latency p50/p99 (under load: queueing).
2. HTTP, sequential: 1 000 requests one at a time (after 100 warm-up) from a small python3
   client in c1, alternating mesh and direct request by request (so a noisy moment hits both),
   (a) on a new TCP connection per request (connect + GET + answer), (b) on one keep-alive
   connection per path; p50/p99 per run. Added latency = mesh - direct, at p50 and p99.
3. TCP throughput: ``iperf3 -c`` for 5 s, and the bytes that crossed h3's ingress sandbox during
   the run (the mesh path goes through it, the direct one does not). For information, three
   references that split the mesh's cost: ``underlay`` (c1 -> an iperf3 server in h2's own
   namespace), ``mesh_local`` (c1 -> h2:PUB, the mesh entered on the task's own node: sandbox,
   DNAT and masquerade without the VXLAN hop) and ``overlay_hop`` (from h3's ingress sandbox to
   the task's ingress address: the VXLAN hop without the NATs).

Each measure is run 3 times per path, interleaved (the order reversed every other round); a
figure is the median of its 3 runs. Targets: mesh throughput >= 80 % of direct; sequential p99
added latency (new connection per request) <= 1 ms. Printed next to their targets with
PASS/FAIL, and written to benchmarks/results/mesh.json. Needs root, wrk and iperf3. Takes
about 3 minutes.

Run from the repository root: .venv/bin/python -m benchmarks.mesh
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    close_figures,
    ferry,
    join_swarm,
    lab,
    lab_exec,
    median,
    opening_figures,
    percentile,
    progress,
    run,
    write,
)
from ferry.api.client import ApiClient
from ferry.lab.topology import LabTopology

NAME = "bms"
SUBNET = "10.93.0.0/24"
NET = "meshnet"
CLIENT = "c1"
SERVER_NODE = "h2"  # the only replica of each service runs here
MESH_NODE = "h3"  # no replica: the mesh path enters here
RUNS = 3
WRK_S = 5
WRK_THREADS = 2
WRK_CONNS = 16
SEQ_N = 1000
SEQ_WARMUP = 100
IPERF_S = 5
READY_TIMEOUT_S = 60
HTTP_TARGET = 80
HTTP_MESH, HTTP_DIRECT = 8080, 8081
IPERF_TARGET = 5201
IPERF_MESH, IPERF_DIRECT = 5201, 5202
IPERF_UNDERLAY = 5301  # an iperf3 server in SERVER_NODE's own namespace
PATHS = ("mesh", "direct")
REFERENCES = ("underlay", "mesh_local", "overlay_hop")  # throughput, for information

# The task: an HTTP/1.1 server on asyncio, listening on argv[1]. One thread: with
# ThreadingHTTPServer (a thread started per connection) 2-25 % of new-connection requests took
# ~4 ms, on either path and even against a host's own namespace, which hid the path's cost.
SERVER = r"""
import asyncio, socket, sys
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"
async def serve(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", int(sys.argv[1]), backlog=1024)
    await server.serve_forever()
asyncio.run(main())
"""

# Runs in c1 (system python3): TOTAL rounds (after WARMUP) of one request to each HOST:PORT,
# the order reversed every other round; first on a new connection per request, then on one
# keep-alive connection per target. Prints the per-request seconds, per target, as JSON.
SEQ_CLIENT = r"""
import json, socket, sys, time
total, warmup = int(sys.argv[1]), int(sys.argv[2])
targets = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in sys.argv[3:]]
REQ = b"GET / HTTP/1.1\r\nHost: mesh\r\n\r\n"
def connect(target):
    s = socket.create_connection(target, timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def ask(s):
    s.sendall(REQ)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed mid-answer")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += s.recv(4096)
def order(i):
    ks = list(range(len(targets)))
    return ks if i % 2 == 0 else ks[::-1]
out = {"new": [[] for _ in targets], "keepalive": [[] for _ in targets]}
for i in range(warmup + total):
    for k in order(i):
        t0 = time.perf_counter()
        s = connect(targets[k])
        ask(s)
        elapsed = time.perf_counter() - t0
        s.close()
        if i >= warmup:
            out["new"][k].append(elapsed)
socks = [connect(t) for t in targets]
for i in range(warmup + total):
    for k in order(i):
        t0 = time.perf_counter()
        ask(socks[k])
        elapsed = time.perf_counter() - t0
        if i >= warmup:
            out["keepalive"][k].append(elapsed)
for s in socks:
    s.close()
print(json.dumps(out))
"""

# Runs in c1: until every HOST:PORT answers GET / with 200, or the deadline.
READY = r"""
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
for target in sys.argv[2:]:
    host, port = target.rsplit(":", 1)
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: mesh\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{target} never answered")
        time.sleep(0.1)
"""


# --- processes ------------------------------------------------------------------------------
Runner = Callable[..., str]


def outside(topo: LabTopology) -> Runner:
    """Commands in the client c1, "the outside"."""
    return lambda *cmd, timeout_s=60: lab_exec(topo, CLIENT, *cmd, timeout_s=timeout_s)


def in_netns(netns: str) -> Runner:
    return lambda *cmd, timeout_s=60: run(["ip", "netns", "exec", netns, *cmd], timeout_s)


def ingress_sandbox(topo: LabTopology, host: str) -> str:
    return f"{topo.node(host).netns_prefix}ingress"


def http_targets(topo: LabTopology) -> dict[str, str]:
    """For each path, the HOST:PORT c1 asks."""
    return {
        "mesh": f"{topo.node(MESH_NODE).addr}:{HTTP_MESH}",
        "direct": f"{topo.node(SERVER_NODE).addr}:{HTTP_DIRECT}",
    }


def task_ingress_ip(topo: LabTopology, service: str) -> str:
    client = ApiClient(f"unix://{topo.node('h1').socket}", timeout_s=30)
    tasks = client.get("/tasks", filters={"service": [service]})
    running = [t for t in tasks if t["Status"]["State"] == "running"]
    if len(running) != 1:
        raise RuntimeError(f"{service}: {len(running)} running tasks, want 1")
    for attachment in running[0]["NetworksAttachments"]:
        if attachment["Network"]["Spec"]["Name"] == "ingress":
            return str(attachment["Addresses"][0].split("/")[0])
    raise RuntimeError(f"{service}: its task is not on the ingress network")


def iperf_targets(topo: LabTopology) -> dict[str, tuple[Runner, str, int]]:
    """For each path (and reference), who runs the iperf3 client, against which HOST, PORT."""
    c1 = outside(topo)
    mesh, server = topo.node(MESH_NODE).addr, topo.node(SERVER_NODE).addr
    return {
        "mesh": (c1, mesh, IPERF_MESH),
        "direct": (c1, server, IPERF_DIRECT),
        "underlay": (c1, server, IPERF_UNDERLAY),
        "mesh_local": (c1, server, IPERF_MESH),
        "overlay_hop": (
            in_netns(ingress_sandbox(topo, MESH_NODE)),
            task_ingress_ip(topo, "perf"),
            IPERF_TARGET,
        ),
    }


def interleaved(keys: tuple[str, ...], round_: int) -> tuple[str, ...]:
    """The keys in order in even rounds, reversed in odd ones."""
    return keys if round_ % 2 == 0 else keys[::-1]


# --- the measures ---------------------------------------------------------------------------
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def wrk(topo: LabTopology, target: str) -> dict[str, float]:
    out = outside(topo)(
        "wrk",
        *("-t", str(WRK_THREADS), "-c", str(WRK_CONNS), "-d", f"{WRK_S}s", "--timeout", "2s"),
        "--latency",
        f"http://{target}/",
        timeout_s=WRK_S + 30,
    )
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or p50 is None or p99 is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = sum(int(g) for g in errors.groups()) if errors else 0
    failed += int(non2xx.group(1)) if non2xx else 0
    return {
        "rps": float(rps.group(1)),
        "p50_ms": wrk_ms(p50.group(1)),
        "p99_ms": wrk_ms(p99.group(1)),
        "requests": float(total.group(1)),
        "errors": float(failed),
    }


def sequential(topo: LabTopology, round_: int) -> dict[str, dict[str, float]]:
    """One run of the alternating sequential client: per path, p50/p99 of both modes."""
    order = interleaved(PATHS, round_)
    targets = http_targets(topo)
    out = outside(topo)(
        *("timeout", "90", "python3", "-c", SEQ_CLIENT, str(SEQ_N), str(SEQ_WARMUP)),
        *(targets[path] for path in order),
        timeout_s=120,
    )
    samples = json.loads(out)
    figures: dict[str, dict[str, float]] = {}
    for k, path in enumerate(order):
        figures[path] = {}
        for mode in ("new", "keepalive"):
            values = samples[mode][k]
            figures[path][f"{mode}_p50_ms"] = median(values) * 1e3
            figures[path][f"{mode}_p99_ms"] = percentile(values, 99) * 1e3
    return figures


def sandbox_bytes(topo: LabTopology) -> int:
    """rx + tx bytes of the ingress-overlay leg of MESH_NODE's ingress sandbox."""
    out = run(["ip", "-n", ingress_sandbox(topo, MESH_NODE), "-s", "-j", "link", "show", "eth0"])
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]) + int(stats["tx"]["bytes"])


def iperf(topo: LabTopology, client: Runner, host: str, port: int) -> dict[str, float]:
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", str(IPERF_S), "-J"]
    argv += ["--connect-timeout", "3000"]
    for attempt in range(10):
        before = sandbox_bytes(topo)
        try:
            out = client(*argv, timeout_s=IPERF_S + 30)
        except RuntimeError as exc:  # the server may still be finishing the previous test
            if attempt == 9 or not ("refused" in str(exc) or "busy" in str(exc)):
                raise
            time.sleep(0.3)
            continue
        end = json.loads(out)["end"]
        return {
            "gbps": float(end["sum_received"]["bits_per_second"]) / 1e9,
            "retransmits": float(end["sum_sent"].get("retransmits", 0)),
            "sandbox_mb": (sandbox_bytes(topo) - before) / 1e6,
        }
    raise AssertionError("unreachable")


def summarise(figures: dict[str, Any], name: str, runs: list[dict[str, float]]) -> None:
    """Each figure of the runs as its median, with every run's value."""
    for key in runs[0]:
        values = [r[key] for r in runs]
        figures[f"{name}_{key}"] = median(values)
        figures[f"{name}_{key}_runs"] = [round(v, 4) for v in values]


def measure(topo: LabTopology) -> dict[str, Any]:
    http = http_targets(topo)
    perf_paths = iperf_targets(topo)
    wrks: dict[str, list[dict[str, float]]] = {p: [] for p in PATHS}
    seqs: dict[str, list[dict[str, float]]] = {p: [] for p in PATHS}
    perfs: dict[str, list[dict[str, float]]] = {p: [] for p in perf_paths}
    for round_ in range(RUNS):
        for path in interleaved(PATHS, round_):
            wrks[path].append(wrk(topo, http[path]))
        for path, values in sequential(topo, round_).items():
            seqs[path].append(values)
        for path in interleaved(tuple(perf_paths), round_):
            perfs[path].append(iperf(topo, *perf_paths[path]))
        progress(BEGAN, f"round {round_ + 1}/{RUNS} done")
    figures: dict[str, Any] = {}
    for path in PATHS:
        summarise(figures, f"{path}_wrk", wrks[path])
        summarise(figures, f"{path}_seq", seqs[path])
    for path in perf_paths:
        summarise(figures, f"{path}_iperf", perfs[path])
    direct = figures["direct_iperf_gbps"]
    figures["iperf_mesh_vs_direct_ratio"] = figures["mesh_iperf_gbps"] / direct
    for ref in REFERENCES:
        figures[f"iperf_{ref}_vs_direct_ratio"] = figures[f"{ref}_iperf_gbps"] / direct
    figures["wrk_rps_mesh_vs_direct_ratio"] = figures["mesh_wrk_rps"] / figures["direct_wrk_rps"]
    for what, key in (("wrk", "wrk"), ("seq_new", "seq_new"), ("seq_keepalive", "seq_keepalive")):
        for pct in ("p50", "p99"):
            added = figures[f"mesh_{key}_{pct}_ms"] - figures[f"direct_{key}_{pct}_ms"]
            figures[f"added_{what}_{pct}_ms"] = added
    return figures


# --- lab set-up and the report --------------------------------------------------------------
def form_swarm(topo: LabTopology) -> None:
    join_swarm(topo)
    ferry(topo, "h1", "network", "create", "-d", "overlay", NET)


def publish(published: int, target: int, mode: str) -> str:
    return f"published={published},target={target},mode={mode}"


def create_services(topo: LabTopology) -> None:
    """The two services, each converged (the CLI waits), then every HTTP path answering from
    c1; and the underlay reference's iperf3 server (the lab's teardown ends it)."""
    for name, ports, cmd in (
        ("web", (HTTP_MESH, HTTP_DIRECT, HTTP_TARGET), ["python3", "-c", SERVER, str(HTTP_TARGET)]),
        ("perf", (IPERF_MESH, IPERF_DIRECT, IPERF_TARGET), ["iperf3", "-s"]),
    ):
        mesh, direct, target = ports
        ferry(
            topo,
            "h1",
            *("service", "create", "--name", name, "--network", NET, "--replicas", "1"),
            *("--constraint", f"node.hostname=={SERVER_NODE}"),
            *("--publish", publish(mesh, target, "ingress")),
            *("--publish", publish(direct, target, "host")),
            "tools",
            *cmd,
            timeout_s=READY_TIMEOUT_S + 30,
        )
        ps = ferry(topo, "h1", "service", "ps", name)
        if f" {SERVER_NODE} " not in ps or "Running" not in ps:
            raise RuntimeError(f"{name} is not running on {SERVER_NODE}:\n{ps}")
    lab_exec(topo, SERVER_NODE, "iperf3", "-s", "-D", "-p", str(IPERF_UNDERLAY))
    targets = list(http_targets(topo).values())
    outside(topo)("python3", "-c", READY, str(READY_TIMEOUT_S), *targets, timeout_s=90)


def verdicts(f: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    ratio = f["iperf_mesh_vs_direct_ratio"]
    added99 = f["added_seq_new_p99_ms"]
    return [
        (
            "TCP throughput mesh/direct",
            ">= 80 %",
            f"{ratio:.1%} ({f['mesh_iperf_gbps']:.2f} / {f['direct_iperf_gbps']:.2f} Gbit/s)",
            ratio >= 0.80,
        ),
        (
            "  mesh_local/direct (no VXLAN)",
            "-",
            f"{f['iperf_mesh_local_vs_direct_ratio']:.1%} ({f['mesh_local_iperf_gbps']:.2f} "
            "Gbit/s: sandbox + 2 NATs, entered on the task's node)",
            True,
        ),
        (
            "  overlay_hop/direct (no NAT)",
            "-",
            f"{f['iperf_overlay_hop_vs_direct_ratio']:.1%} ({f['overlay_hop_iperf_gbps']:.2f} "
            "Gbit/s: h3's sandbox -> the task over VXLAN)",
            True,
        ),
        (
            "added latency p99 (sequential)",
            "<= 1 ms",
            f"{added99 * 1e3:+.0f} us ({f['mesh_seq_new_p99_ms']:.3f} / "
            f"{f['direct_seq_new_p99_ms']:.3f} ms, new connection per request)",
            added99 <= 1.0,
        ),
        (
            "  added latency p50 (sequential)",
            "-",
            f"{f['added_seq_new_p50_ms'] * 1e3:+.0f} us ({f['mesh_seq_new_p50_ms']:.3f} / "
            f"{f['direct_seq_new_p50_ms']:.3f} ms)",
            True,
        ),
        (
            "  added, keep-alive p50 / p99",
            "-",
            f"{f['added_seq_keepalive_p50_ms'] * 1e3:+.0f} / "
            f"{f['added_seq_keepalive_p99_ms'] * 1e3:+.0f} us (p99 mesh "
            f"{f['mesh_seq_keepalive_p99_ms']:.3f} / direct "
            f"{f['direct_seq_keepalive_p99_ms']:.3f} ms)",
            True,
        ),
        (
            "  wrk req/s mesh/direct",
            "-",
            f"{f['wrk_rps_mesh_vs_direct_ratio']:.1%} ({f['mesh_wrk_rps']:.0f} / "
            f"{f['direct_wrk_rps']:.0f} req/s)",
            True,
        ),
        (
            "  wrk added p50 / p99 (loaded)",
            "-",
            f"{f['added_wrk_p50_ms']:+.3f} / {f['added_wrk_p99_ms']:+.3f} ms",
            True,
        ),
    ]


def report(f: dict[str, Any]) -> None:
    def runs(key: str, fmt: str = ".3f") -> str:
        return ", ".join(f"{v:{fmt}}" for v in f[f"{key}_runs"])

    print(
        f"\n{'path':<7} {'wrk req/s':>10} {'wrk p50':>8} {'wrk p99':>8} {'new p50':>8} "
        f"{'new p99':>8} {'ka p50':>8} {'ka p99':>8} {'Gbit/s':>7}   (latencies in ms)"
    )
    for p in PATHS:
        print(
            f"{p:<7} {f[f'{p}_wrk_rps']:>10.0f} {f[f'{p}_wrk_p50_ms']:>8.3f} "
            f"{f[f'{p}_wrk_p99_ms']:>8.3f} {f[f'{p}_seq_new_p50_ms']:>8.3f} "
            f"{f[f'{p}_seq_new_p99_ms']:>8.3f} {f[f'{p}_seq_keepalive_p50_ms']:>8.3f} "
            f"{f[f'{p}_seq_keepalive_p99_ms']:>8.3f} {f[f'{p}_iperf_gbps']:>7.2f}"
        )
    for p in (*PATHS, *REFERENCES):
        print(
            f"{p:<12} Gbit/s {runs(f'{p}_iperf_gbps', '.2f'):<18} retransmits "
            f"{runs(f'{p}_iperf_retransmits', '.0f'):<16} MB through h3's ingress sandbox "
            f"{runs(f'{p}_iperf_sandbox_mb', '.0f')}"
        )
    for p in PATHS:
        print(
            f"{p:<7} req/s {runs(f'{p}_wrk_rps', '.0f')}; new-connection p99 ms "
            f"{runs(f'{p}_seq_new_p99_ms')}; keep-alive p99 ms {runs(f'{p}_seq_keepalive_p99_ms')}"
        )
    print(f"\n{'figure':<34} {'target':<9} {'measured':<72} result")
    for name, target, measured, ok in verdicts(f):
        result = ("PASS" if ok else "FAIL") if target != "-" else "info"
        print(f"{name:<34} {target:<9} {measured:<72} {result}")


BEGAN = time.perf_counter()


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root")
    figures = opening_figures(NAME)
    with lab(NAME, 3, 1, SUBNET) as topo:
        form_swarm(topo)
        progress(BEGAN, "swarm formed")
        create_services(topo)
        progress(BEGAN, "services running, every path answers from c1")
        figures.update(measure(topo))
    close_figures(figures, verdicts(figures), BEGAN, NAME)
    figures["note"] = (
        f"one replica per service, on {SERVER_NODE}. mesh = c1 -> {MESH_NODE}:published (no "
        f"replica there) -> {MESH_NODE}'s ingress sandbox -> ingress overlay -> the task; direct "
        f"= c1 -> {SERVER_NODE}:published2, the same service also published in host mode (one "
        "DNAT on the task's node into the container). The outside cannot route to a task's "
        "overlay address at all, so host mode is the 'directly to the task' reference. "
        f"References (info): underlay = c1 -> iperf3 in {SERVER_NODE}'s own netns; mesh_local = "
        f"c1 -> {SERVER_NODE}:published (ingress sandbox and NATs, no VXLAN hop); overlay_hop = "
        f"{MESH_NODE}'s ingress sandbox -> the task's ingress address (VXLAN, no NAT). Medians "
        f"of {RUNS} interleaved runs (order reversed every other round); seq = {SEQ_N} "
        "sequential requests after a warm-up, alternating mesh/direct request by request, on a "
        "new TCP connection each ('new') or one keep-alive connection per path; the server is "
        "single-threaded asyncio python3. All ends (client, 3 hosts, tasks) share the same 2 "
        "vCPUs: compare the paths with each other, not with real NICs."
    )
    report(figures)
    write("mesh", figures)


if __name__ == "__main__":
    main()
