"""Manager failover figures: how long the swarm's API is gone after the leader dies.

What it measures, in one run on a 3-host lab "bmgr" (underlay 10.92.0.0/24) whose three hosts
are all managers (h1 inits, h2 and h3 join with the manager token):

Each trial kills the manager that leads, ferryd and etcd together (SIGKILL), at the moment its
etcd member also leads etcd (if it does not, etcd's leadership is first handed to it with
etcd's MoveLeader, so every trial is the kill of both offices at once: the case the issue
names). From the kill, three times, side by side:

(a) ``write``: the first successful write through a surviving manager's Docker API: ``POST
    /configs/create`` of a small config (it goes through the store: a transaction in etcd), sent
    to each survivor in a loop of its own (a failed or refused attempt is retried at once, each
    attempt bounded by WRITE_TIMEOUT_S); the earliest success of either.
(b) ``etcd_election``: the first moment a surviving etcd member reports a leader other than the
    dead one (etcd's Status RPC, polled every 20 ms on 127.0.0.1:2379 inside each host's
    namespace by ``etcd_watch.py``; its CLOCK_MONOTONIC times compare with this process's).
(c) ``ferry_leader``: the first moment ``GET /nodes`` on a survivor shows another manager as
    leader (polled every 20 ms on each survivor).

Then the killed manager's ferryd is started again (it starts its etcd member again), and the
next trial waits until every manager answers, all three are reachable and every member agrees
on one etcd leader. TRIALS trials (default 20; ``FERRY_BENCH_TRIALS`` lowers it for a quick
run); p50 and p99 of each figure. Needs root. Clients reach ferryd through its unix socket (a
file) and etcd from inside the host's namespace only: nothing in the root namespace talks to
a lab address.

Run from the repository root: .venv/bin/python -m benchmarks.managers
Writes benchmarks/results/managers.json.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.common import (
    FERRY,
    close_figures,
    ferry,
    lab_exec,
    opening_figures,
    percentile,
    progress,
    write,
)
from ferry.api.client import ApiClient
from ferry.errors import FerryError
from ferry.kernel import proc
from ferry.lab import lab as labmod
from ferry.lab.topology import LabTopology

NAME = "bmgr"
SUBNET = "10.92.0.0/24"
TRIALS = int(os.environ.get("FERRY_BENCH_TRIALS", "20"))
POLL_S = 0.02
WRITE_TIMEOUT_S = 10.0  # one write attempt; a hung attempt counts in full
TRIAL_TIMEOUT_S = 60.0  # a trial whose figures are not all in by then fails the run
HEALTHY_TIMEOUT_S = 120.0
WRITE_TARGET_S = 3.0
PROBE = Path(__file__).resolve().parent / "etcd_watch.py"
HOSTS = ("h1", "h2", "h3")

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(POLL_S * 5)


def api(topo: LabTopology, host: str, timeout_s: float = 5.0) -> ApiClient:
    return ApiClient(f"unix://{topo.node(host).socket}", timeout_s=timeout_s)


# --- etcd probes (one per host, inside its namespace) ----------------------------------------
class Probes:
    """``etcd_watch.py watch`` on every host; what each member said, with its times."""

    def __init__(self, topo: LabTopology, out_dir: Path) -> None:
        self._topo = topo
        self._files = {h: out_dir / f"etcd-{h}.jsonl" for h in HOSTS}
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for host, path in self._files.items():
            certs = self._topo.node(host).state_dir / "certs"
            argv = [FERRY, "lab", "exec", "--name", NAME, host, "--",
                    sys.executable, str(PROBE), "watch", str(certs)]  # fmt: skip
            with path.open("wb") as out:
                self._procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        # ferry lab exec execs nsenter, which execs python: the pid is the probe's own
        proc.kill_pids([p.pid for p in self._procs], signal.SIGKILL)
        for p in self._procs:
            p.wait(timeout=10)

    def lines(self, host: str) -> list[dict[str, Any]]:
        text = self._files[host].read_text()
        return [json.loads(line) for line in text.splitlines() if line.endswith("}")]

    def last(self, host: str) -> dict[str, Any]:
        lines = self.lines(host)
        return lines[-1] if lines else {"error": "no answer yet"}

    def member(self, host: str) -> str:
        return wait_for(
            lambda: next((str(ln["member"]) for ln in self.lines(host) if "member" in ln), None),
            HEALTHY_TIMEOUT_S,
            f"{host}'s etcd member to answer",
        )

    def elected_after(self, t0: float, survivors: list[str], dead: str) -> float | None:
        """When a survivor first reported a leader other than ``dead`` after ``t0``."""
        times = [
            ln["t"]
            for host in survivors
            for ln in self.lines(host)
            if ln["t"] >= t0 and ln.get("leader") not in (None, "0", dead)
        ]
        return min(times) if times else None


# --- the swarm -------------------------------------------------------------------------------
def form_swarm(topo: LabTopology) -> None:
    h1 = topo.node("h1").addr
    lab_exec(topo, "h1", "ferry", "swarm", "init", "--advertise-addr", h1)
    token = ferry(topo, "h1", "swarm", "join-token", "-q", "manager").strip()
    for host in HOSTS[1:]:
        lab_exec(topo, host, "ferry", "swarm", "join", "--token", token, f"{h1}:2377")


def ferry_leader(topo: LabTopology, host: str) -> str | None:
    """The hostname ``host``'s manager names as leader; None without an answer or a leader."""
    try:
        nodes = api(topo, host).get("/nodes")
    except FerryError:
        return None
    return next(
        (
            n["Description"]["Hostname"]
            for n in nodes
            if (n.get("ManagerStatus") or {}).get("Leader")
        ),
        None,
    )


def healthy(topo: LabTopology, probes: Probes) -> str | None:
    """The leader's hostname once every manager answers, names the same leader and sees all
    three reachable, and every etcd member names the same leader; else None."""
    leaders = set()
    for host in HOSTS:
        try:
            nodes = api(topo, host).get("/nodes")
        except FerryError:
            return None
        status = [n.get("ManagerStatus") or {} for n in nodes]
        if len(status) != 3 or {s.get("Reachability") for s in status} != {"reachable"}:
            return None
        named = zip(nodes, status, strict=True)
        leaders |= {str(n["Description"]["Hostname"]) for n, s in named if s.get("Leader")}
    etcd_leaders = {probes.last(h).get("leader") for h in HOSTS}
    if len(leaders) != 1 or len(etcd_leaders) != 1 or etcd_leaders & {None, "0"}:
        return None
    return leaders.pop()


# --- one trial -------------------------------------------------------------------------------
@dataclass
class Attempts:
    """What the loops after a kill saw: first success per survivor, errors by message."""

    first: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, exc: Exception) -> None:
        with self.lock:
            key = str(exc)[:100]
            self.errors[key] = self.errors.get(key, 0) + 1


def write_until_done(
    topo: LabTopology, host: str, trial: int, deadline: float, seen: Attempts
) -> None:
    client = api(topo, host, WRITE_TIMEOUT_S)
    data = base64.b64encode(b"failover").decode()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            client.post("/configs/create", {"Name": f"t{trial}-{host}-{n}", "Data": data})
        except FerryError as exc:
            seen.failed(exc)
            time.sleep(POLL_S)
            continue
        seen.first[host] = time.monotonic()
        return


def lead_seen(topo: LabTopology, host: str, dead: str, deadline: float, seen: Attempts) -> None:
    while time.monotonic() < deadline:
        leader = ferry_leader(topo, host)
        if leader is not None and leader != dead:
            seen.first[host] = time.monotonic()
            return
        time.sleep(POLL_S)


@contextmanager
def running(*threads: threading.Thread) -> Iterator[None]:
    for t in threads:
        t.start()
    try:
        yield
    finally:
        for t in threads:
            t.join()


def align(topo: LabTopology, probes: Probes, members: dict[str, str]) -> tuple[str, bool]:
    """Make the Ferry leader's etcd member lead etcd too; (leader's host, already so)."""
    leader = wait_for(lambda: healthy(topo, probes), HEALTHY_TIMEOUT_S, "a healthy swarm")
    by_member = {m: h for h, m in members.items()}
    etcd_host = by_member[probes.last(leader)["leader"]]
    if etcd_host == leader:
        return leader, True
    lab_exec(topo, etcd_host, sys.executable, str(PROBE), "move-leader",
             str(topo.node(etcd_host).state_dir / "certs"), members[leader])  # fmt: skip
    for _ in range(10):
        now = wait_for(lambda: healthy(topo, probes), HEALTHY_TIMEOUT_S, "a healthy swarm")
        if probes.last(now)["leader"] == members[now]:
            return now, False
        time.sleep(0.5)
    raise RuntimeError("etcd's leader and Ferry's leader did not settle on one manager")


def trial(topo: LabTopology, probes: Probes, members: dict[str, str], n: int) -> dict[str, Any]:
    dead, aligned = align(topo, probes, members)
    survivors = [h for h in HOSTS if h != dead]
    node = topo.node(dead)
    ferryd = labmod.ferryd_pid(node)
    etcd = json.loads((node.state_dir / "etcd" / "etcd.pid").read_text())["pid"]
    assert ferryd is not None
    writes, leads = Attempts(), Attempts()
    t0 = time.monotonic()
    deadline = t0 + TRIAL_TIMEOUT_S
    proc.kill_pids([ferryd, etcd], signal.SIGKILL)
    threads = [
        *(threading.Thread(target=write_until_done, args=(topo, h, n, deadline, writes))
          for h in survivors),
        *(threading.Thread(target=lead_seen, args=(topo, h, dead, deadline, leads))
          for h in survivors),
    ]  # fmt: skip
    with running(*threads):
        pass
    (node.run_dir / "ferryd.pid").unlink(missing_ok=True)
    elected = wait_for(
        lambda: probes.elected_after(t0, survivors, members[dead]), 10, "the probes' election"
    )
    if not writes.first or not leads.first:
        raise RuntimeError(f"trial {n}: no write or no new leader within {TRIAL_TIMEOUT_S} s")
    labmod.start_ferryd(topo, dead)
    return {
        "killed": dead,
        "was_etcd_leader": aligned,
        "write_s": min(writes.first.values()) - t0,
        "write_per_survivor_s": {h: round(t - t0, 3) for h, t in writes.first.items()},
        "etcd_election_s": elected - t0,
        "ferry_leader_s": min(leads.first.values()) - t0,
        "new_leader": ferry_leader(topo, survivors[0]),
        "write_errors": writes.errors,
    }


# --- figures ---------------------------------------------------------------------------------
FIGURES = ("write_s", "etcd_election_s", "ferry_leader_s")


def summarise(trials: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"trials": len(trials), "trial_details": trials}
    for key in FIGURES:
        values = [t[key] for t in trials]
        out[f"{key}_p50"] = percentile(values, 50)
        out[f"{key}_p99"] = percentile(values, 99)
        out[f"{key}_runs"] = [round(v, 3) for v in values]
    out["write_after_election_s_p50"] = percentile(
        [t["write_s"] - t["etcd_election_s"] for t in trials], 50
    )
    out["leader_after_election_s_p50"] = percentile(
        [t["ferry_leader_s"] - t["etcd_election_s"] for t in trials], 50
    )
    out["etcd_leader_moved_before_kill"] = sum(not t["was_etcd_leader"] for t in trials)
    return out


def verdicts(f: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    return [
        (
            "failover: write elsewhere p99",
            f"<= {WRITE_TARGET_S:.0f} s",
            f"{f['write_s_p99']:.2f} s (p50 {f['write_s_p50']:.2f} s)",
            f["write_s_p99"] <= WRITE_TARGET_S,
        ),
        (
            "  info: etcd election",
            "-",
            f"p50 {f['etcd_election_s_p50']:.2f} s, p99 {f['etcd_election_s_p99']:.2f} s",
            True,
        ),
        (
            "  info: new Ferry leader shown",
            "-",
            f"p50 {f['ferry_leader_s_p50']:.2f} s, p99 {f['ferry_leader_s_p99']:.2f} s",
            True,
        ),
    ]


def report(f: dict[str, Any]) -> None:
    print(f"\n{'from the kill (s)':<22} {'p50':>6} {'p99':>6}  runs")
    for key in FIGURES:
        runs = " ".join(f"{v:.2f}" for v in f[f"{key}_runs"])
        print(f"{key:<22} {f[f'{key}_p50']:6.2f} {f[f'{key}_p99']:6.2f}  {runs}")
    print(f"\n{'figure':<34} {'target':<10} {'measured':<34} result")
    for name, target, measured, ok in verdicts(f):
        print(f"{name:<34} {target:<10} {measured:<34} {'PASS' if ok else 'FAIL'}")


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root")
    began = time.perf_counter()
    figures = opening_figures(NAME)
    labmod.down(NAME)
    topo = labmod.up(NAME, len(HOSTS), 0, SUBNET)
    probes = Probes(topo, topo.lab_dir)
    try:
        form_swarm(topo)
        probes.start()
        members = {h: probes.member(h) for h in HOSTS}
        progress(began, "swarm of 3 managers formed")
        trials = []
        for n in range(1, TRIALS + 1):
            trials.append(trial(topo, probes, members, n))
            t = trials[-1]
            figures_now = {k: round(t[k], 3) for k in FIGURES}
            progress(began, f"trial {n}: killed {t['killed']}", figures_now)
    finally:
        probes.stop()
        labmod.down(NAME)
    figures.update(summarise(trials))
    close_figures(figures, verdicts(figures), began, NAME)
    figures["note"] = (
        "each trial SIGKILLs ferryd and etcd of the manager that leads both Ferry and etcd; "
        "times from the kill on one CLOCK_MONOTONIC; write = first successful POST "
        "/configs/create on either survivor; etcd_election = a survivor's etcd Status names "
        "another leader; ferry_leader = GET /nodes on a survivor names another leader"
    )
    report(figures)
    write("managers", figures)


if __name__ == "__main__":
    main()
