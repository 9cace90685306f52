"""Root CA rotation figures: how long ``docker swarm ca --rotate`` takes to converge, and that
the swarm's work goes on meanwhile.

One run on a 5-host lab "bcar" (underlay 10.91.0.0/24): h1 inits, h2 joins as a manager, h3 to h5
as workers; a service of 5 replicas runs. Each trial asks a rotation as the docker CLI does
(``POST /swarm/update`` with ``CAConfig.ForceRotate`` one above the swarm's, through h1's
socket file) and times, from that call:

- ``trusted``: every node reports trusting the new root (step 1 done);
- ``converged``: the rotation is over as ``docker swarm ca --rotate`` decides it: no rotation
  in progress, every node holding a certificate of the swarm's (new) root and trusting it
  alone (the node list's ``Description.TLSInfo`` against the swarm's ``TLSInfo``).

Polled every 50 ms. The figures are bounded below by the heartbeat period (2 s: a node learns
each step from a heartbeat's reply and reports it in the next) and the leader's 1 s check.
Per trial it also counts tasks replaced (it must be 0). TRIALS trials (default 10;
``FERRY_BENCH_TRIALS`` changes it); p50 and p99.

Run from the repository root: .venv/bin/python -m benchmarks.ca_rotation
Writes benchmarks/results/ca_rotation.json.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from benchmarks.common import (
    close_figures,
    ferry,
    import_tools,
    lab_exec,
    opening_figures,
    percentile,
    progress,
    write,
)
from ferry.api.client import ApiClient
from ferry.lab import lab as labmod
from ferry.lab.topology import LabTopology

NAME = "bcar"
SUBNET = "10.91.0.0/24"
HOSTS = 5
TRIALS = int(os.environ.get("FERRY_BENCH_TRIALS", "10"))
POLL_S = 0.05
TRIAL_TIMEOUT_S = 120.0


def api(topo: LabTopology) -> ApiClient:
    return ApiClient(f"unix://{topo.node('h1').socket}", timeout_s=10)


def form(topo: LabTopology) -> None:
    h1 = topo.node("h1").addr
    lab_exec(topo, "h1", "ferry", "swarm", "init", "--advertise-addr", h1)
    tokens = {r: ferry(topo, "h1", "swarm", "join-token", "-q", r).strip()
              for r in ("manager", "worker")}  # fmt: skip
    for n in range(2, HOSTS + 1):
        token = tokens["manager" if n == 2 else "worker"]
        lab_exec(topo, f"h{n}", "ferry", "swarm", "join", "--token", token, f"{h1}:2377")
    ferry(topo, "h1", "service", "create", "--name", "keep", "--replicas", str(HOSTS), "tools",
          "sleep", "86400")  # fmt: skip


def task_ids(client: ApiClient) -> set[str]:
    tasks = client.get("/tasks", filters='{"service":["keep"],"desired-state":["running"]}')
    return {t["ID"] for t in tasks if t["Status"]["State"] == "running"}


def trial(client: ApiClient) -> dict[str, Any]:
    swarm = client.get("/swarm")
    before = task_ids(client)
    ca_config = dict(swarm["Spec"].get("CAConfig") or {})
    ca_config["ForceRotate"] = int(ca_config.get("ForceRotate") or 0) + 1
    spec = {**swarm["Spec"], "CAConfig": ca_config}
    t0 = time.monotonic()
    client.post("/swarm/update", spec, version=swarm["Version"]["Index"])
    trusted = converged = None
    while time.monotonic() - t0 < TRIAL_TIMEOUT_S:
        swarm = client.get("/swarm")
        nodes = client.get("/nodes")
        infos = [n["Description"]["TLSInfo"] for n in nodes]
        now = time.monotonic() - t0
        if trusted is None and swarm["RootRotationInProgress"]:
            trusted = now if all(i["TrustRoot"].count("BEGIN") == 2 for i in infos) else None
        if not swarm["RootRotationInProgress"] and all(i == swarm["TLSInfo"] for i in infos):
            converged = now
            break
        time.sleep(POLL_S)
    if converged is None:
        raise RuntimeError(f"no convergence within {TRIAL_TIMEOUT_S:.0f} s")
    return {
        "trusted_s": trusted if trusted is not None else converged,
        "converged_s": converged,
        "tasks_replaced": len(before - task_ids(client)),
    }


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root")
    began = time.perf_counter()
    figures = opening_figures(NAME)
    labmod.down(NAME)
    topo = labmod.up(NAME, HOSTS, 0, SUBNET)
    trials = []
    try:
        import_tools(topo)
        form(topo)
        client = api(topo)
        deadline = time.monotonic() + 120
        while len(task_ids(client)) < HOSTS and time.monotonic() < deadline:
            time.sleep(0.5)
        progress(began, f"swarm of {HOSTS} nodes formed, service running")
        for n in range(1, TRIALS + 1):
            trials.append(trial(client))
            progress(began, f"trial {n}", trials[-1])
    finally:
        labmod.down(NAME)
    for key in ("trusted_s", "converged_s"):
        runs = [t[key] for t in trials]
        figures[f"{key}_runs"] = [round(v, 3) for v in runs]
        figures[f"{key}_p50"] = percentile(runs, 50)
        figures[f"{key}_p99"] = percentile(runs, 99)
    figures["tasks_replaced"] = sum(t["tasks_replaced"] for t in trials)
    figures["trials"] = len(trials)
    verdicts = [("no task replaced by a rotation", "0", str(figures["tasks_replaced"]),
                 figures["tasks_replaced"] == 0)]  # fmt: skip
    close_figures(figures, verdicts, began, NAME)
    figures["note"] = (
        f"{HOSTS} nodes (2 managers); times from POST /swarm/update (ForceRotate+1) until "
        "every node trusts both roots (trusted) and until docker swarm ca --rotate's "
        "convergence (converged)"
    )
    write("ca_rotation", figures)


if __name__ == "__main__":
    main()
