"""Encrypted overlays: what WireGuard costs against VXLAN in clear, side by side in one run.

On a 2-host lab "ben" (underlay 10.94.0.0/24): a swarm, a plain overlay ``clear`` and an
encrypted one ``vault`` (``--opt encrypted``), an iperf3 server on h2 and a client on h1 on each.
Per network, interleaved over 3 rounds (the order reversed every other round): TCP throughput
(``iperf3 -t 5``), and RTT (100 pings, 10 ms apart, median); a figure is the median of its 3
runs. No target: the figures say what encryption costs on this machine (this VM has no kernel
WireGuard, so the tunnel is ``wireguard-go`` in userspace). Writes
benchmarks/results/encryption.json. Takes about a minute.

Run from the repository root: .venv/bin/python -m benchmarks.encryption
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import Any

from benchmarks.common import (
    close_figures,
    ferry,
    join_swarm,
    lab,
    median,
    opening_figures,
    progress,
    record_runs,
    write,
)
from ferry.lab.topology import LabTopology

NAME = "ben"
SUBNET = "10.94.0.0/24"
NETWORKS = ("clear", "vault")
RUNS = 3
IPERF_S = 5
PINGS = 100

BEGAN = time.perf_counter()


def address(topo: LabTopology, container: str, network: str) -> str:
    template = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
    return ferry(topo, "h2", "inspect", "-f", template, container).strip()


def set_up(topo: LabTopology) -> dict[str, str]:
    """Per network, the address of its iperf3 server on h2."""
    join_swarm(topo)
    servers = {}
    for net in NETWORKS:
        options = ["--opt", "encrypted"] if net == "vault" else []
        ferry(topo, "h1", "network", "create", "-d", "overlay", "--attachable", *options, net)
        ferry(topo, "h2", "run", "-d", "--network", net, "--name", f"srv-{net}", "tools",
              "iperf3", "-s")  # fmt: skip
        ferry(topo, "h1", "run", "-d", "--network", net, "--name", f"cli-{net}", "tools",
              "sleep", "3600")  # fmt: skip
        servers[net] = address(topo, f"srv-{net}", net)
    return servers


def iperf(topo: LabTopology, net: str, server: str) -> float:
    for attempt in range(10):
        try:
            out = ferry(
                topo, "h1", "exec", f"cli-{net}", "iperf3", "-c", server, "-t", str(IPERF_S), "-J",
                timeout_s=IPERF_S + 30,
            )  # fmt: skip
            return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9
        except RuntimeError:  # the server still finishing the last test, or not up yet
            if attempt == 9:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def rtt_ms(topo: LabTopology, net: str, server: str) -> float:
    out = ferry(
        topo, "h1", "exec", f"cli-{net}", "ping", "-c", str(PINGS), "-i", "0.01", "-W", "1",
        server, timeout_s=60,
    )  # fmt: skip
    times = [float(t) for t in re.findall(r"time=([0-9.]+) ms", out)]
    if len(times) < PINGS * 0.9:
        raise RuntimeError(f"ping over {net}: {len(times)} replies of {PINGS}")
    return median(times)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root")
    figures: dict[str, Any] = opening_figures(NAME)
    with lab(NAME, 2, 0, SUBNET) as topo:
        servers = set_up(topo)
        progress(BEGAN, "networks and containers up")
        gbps: dict[str, list[float]] = {n: [] for n in NETWORKS}
        rtts: dict[str, list[float]] = {n: [] for n in NETWORKS}
        for round_ in range(RUNS):
            order = NETWORKS if round_ % 2 == 0 else NETWORKS[::-1]
            for net in order:
                gbps[net].append(iperf(topo, net, servers[net]))
                rtts[net].append(rtt_ms(topo, net, servers[net]))
            progress(BEGAN, f"round {round_ + 1}/{RUNS} done")
    for net in NETWORKS:
        record_runs(figures, f"{net}_gbps", gbps[net])
        record_runs(figures, f"{net}_rtt_ms", rtts[net])
    figures["vault_vs_clear_throughput"] = figures["vault_gbps"] / figures["clear_gbps"]
    verdicts = [
        (
            "throughput encrypted / clear",
            "-",
            f"{figures['vault_vs_clear_throughput']:.1%} ({figures['vault_gbps']:.2f} / "
            f"{figures['clear_gbps']:.2f} Gbit/s)",
            True,
        ),
        (
            "RTT encrypted / clear",
            "-",
            f"{figures['vault_rtt_ms']:.3f} / {figures['clear_rtt_ms']:.3f} ms",
            True,
        ),
    ]
    close_figures(figures, verdicts, BEGAN, NAME)
    print(f"\n{'figure':<32} {'measured'}")
    for name, _target, measured, _ok in verdicts:
        print(f"{name:<32} {measured}")
    write("encryption", figures)


if __name__ == "__main__":
    main()
