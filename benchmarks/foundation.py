"""Issue 2 figures: time for `lab up` (3 hosts), `swarm init`, a join; ferryd and etcd RSS.

Run: .venv/bin/python benchmarks/foundation.py   (root; writes benchmarks/results/foundation.json)
"""

from __future__ import annotations

import json
import time

from benchmarks.common import ferry, lab_exec, median, rss_kib, write
from ferry.lab import lab as labmod

NAME = "bfound"
ROUNDS = 3


def one_round() -> dict[str, float]:
    labmod.down(NAME)
    start = time.perf_counter()
    topo = labmod.up(NAME, 3, 0, "10.96.0.0/24")
    lab_up_s = time.perf_counter() - start
    try:
        h1 = topo.node("h1").addr
        start = time.perf_counter()
        lab_exec(topo, "h1", "ferry", "swarm", "init", "--advertise-addr", h1)
        init_s = time.perf_counter() - start
        token = ferry(topo, "h1", "swarm", "join-token", "-q", "worker").strip()
        joins = []
        for host in ("h2", "h3"):
            start = time.perf_counter()
            lab_exec(topo, host, "ferry", "swarm", "join", "--token", token, f"{h1}:2377")
            joins.append(time.perf_counter() - start)
        time.sleep(3)  # let sessions settle before reading memory
        ferryd_rss = [rss_kib(p) for p in (labmod.ferryd_pid(h) for h in topo.hosts) if p]
        etcd_pid = json.loads((topo.node("h1").state_dir / "etcd" / "etcd.pid").read_text())["pid"]
        return {
            "lab_up_s": lab_up_s,
            "swarm_init_s": init_s,
            "join_s": median(joins),
            "ferryd_rss_mib": max(ferryd_rss) / 1024,
            "etcd_rss_mib": rss_kib(etcd_pid) / 1024,
        }
    finally:
        labmod.down(NAME)


def main() -> None:
    rounds = [one_round() for _ in range(ROUNDS)]
    figures: dict[str, object] = {key: median([r[key] for r in rounds]) for key in rounds[0]}
    figures["rounds"] = ROUNDS
    figures["note"] = "times include the CLI start (ferry lab exec -> ferry), as a user sees them"
    write("foundation", figures)


if __name__ == "__main__":
    main()
