"""Issue 8's fault suite, measured: time to Down, to reschedule, to ``ferry doctor --all`` clean.

Only for a checkout that has ``ferry doctor`` (the oracle). One fresh lab per fault kind; each
try makes its own service of 3 replicas (one per host when the scheduler spreads them), waits
until they run and doctor is clean, applies the fault and measures:

- ``down_s``: from the fault until h1 lists the node Down (faults that take a node away).
- ``rescheduled_s``: from the fault until 3 tasks run and none on that node.
- ``lost_on_healthy``: tasks running on the other nodes before the fault that no longer run.
- ``replaced``, ``nodes_seen_down``: for the faults on the manager, which must replace nothing:
  tasks no longer running 17 s after every node is ready again (past the new leader's grace),
  and the nodes h1 listed Down at any poll meanwhile; ``all_ready_s``: from the fault until h1
  lists every node Ready; ``api_back_s`` / ``etcd_back_s`` / ``store_answers_s``: until the
  restarted ferryd answers, a new etcd runs, ``ferry node ls`` succeeds.
- ``doctor_clean_s``: until ``ferry doctor --all`` finds nothing, from the recovery (the
  restart or the healed link) for faults with a held outage, from the fault for the others.

Be aware: every time includes polling (h1's API every 0.1-0.2 s, doctor every 0.5 s plus its
own run time, 1-3 s on a busy machine); None means "not within the bound" (30 s, doctor 60 s).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.faultlab import Lab, fresh_lab, wait_for
from ferry.kernel import proc
from ferry.model.node import LEADER_GRACE_S

BOUND_S = 30
DOCTOR_BOUND_S = 60
PARTITION_S = 20
GRACE_WAIT_S = LEADER_GRACE_S + 2  # after every node is Ready: past the leader's grace


def doctor_clean(lab: Lab) -> bool:
    return lab.cli("h1", "doctor", "--all", "--format", "json", check=False).returncode == 0


def _wait_clean(lab: Lab, since: float) -> float | None:
    return wait_for(lambda: doctor_clean(lab), DOCTOR_BOUND_S, 0.5, since=since)


def _on(lab: Lab, svc: str) -> dict[str, str]:
    """Running tasks of ``svc``: task id -> node id."""
    return {t["ID"]: t["NodeID"] for t in lab.running(svc)}


def _prepare(lab: Lab, svc: str) -> dict[str, str]:
    lab.cli("h1", "service", "create", "-d", "--name", svc, "--replicas", "3",
            lab.image, "sleep", "3600")  # fmt: skip
    if wait_for(lambda: len(_on(lab, svc)) == 3, BOUND_S) is None:
        raise RuntimeError(f"{lab.name}: {svc} not running")
    if _wait_clean(lab, time.monotonic()) is None:
        raise RuntimeError(f"{lab.name}: doctor not clean before the fault")
    return _on(lab, svc)


def _node_loss(lab: Lab, svc: str, host: str, take_down: Callable[[], None]) -> dict[str, Any]:
    """``take_down`` removes ``host``; then it is brought back by starting its ferryd."""
    before = _prepare(lab, svc)
    gone = lab.node_ids()[host]
    fault = time.monotonic()
    take_down()
    down_s = wait_for(lambda: lab.node_states().get(host) == "down", BOUND_S, 0.1, since=fault)
    moved = wait_for(
        lambda: len(now := _on(lab, svc)) == 3 and gone not in now.values(),
        BOUND_S,
        since=fault,
    )
    lost = {t for t, n in before.items() if n != gone} - set(_on(lab, svc))
    back = time.monotonic()
    lab.lab("start", host)
    return {
        "tasks_on_node": sum(1 for n in before.values() if n == gone),
        "down_s": down_s,
        "rescheduled_s": moved,
        "lost_on_healthy": len(lost),
        "ready_again_s": wait_for(lambda: lab.node_states().get(host) == "ready", BOUND_S, 0.1),
        "doctor_clean_s": _wait_clean(lab, back),
    }


def worker_ferryd(lab: Lab, svc: str) -> dict[str, Any]:
    """kill -9 of h3's ferryd (its containers live on)."""

    def kill() -> None:
        lab.lab("stop", "h3", "--kill")

    return _node_loss(lab, svc, "h3", kill)


def whole_host(lab: Lab, svc: str) -> dict[str, Any]:
    """kill -9 of h3's ferryd and of every process in its containers."""

    def kill() -> None:
        lab.lab("stop", "h3", "--kill")
        proc.kill_pids(lab.container_pids("h3"))

    return _node_loss(lab, svc, "h3", kill)


def partition(lab: Lab, svc: str) -> dict[str, Any]:
    """h2's underlay link down for 20 s (``ip link set eth0 down`` inside h2)."""
    before = _prepare(lab, svc)
    gone = lab.node_ids()["h2"]
    fault = time.monotonic()
    lab.exec("h2", "ip", "link", "set", "eth0", "down")
    try:
        down_s = wait_for(lambda: lab.node_states().get("h2") == "down", BOUND_S, 0.1, since=fault)
        moved = wait_for(
            lambda: len(now := _on(lab, svc)) == 3 and gone not in now.values(),
            BOUND_S,
            since=fault,
        )
        lost = {t for t, n in before.items() if n != gone} - set(_on(lab, svc))
        time.sleep(max(0.0, fault + PARTITION_S - time.monotonic()))
    finally:
        lab.exec("h2", "ip", "link", "set", "eth0", "up")
    healed = time.monotonic()
    return {
        "tasks_on_node": sum(1 for n in before.values() if n == gone),
        "down_s": down_s,
        "rescheduled_s": moved,
        "lost_on_healthy": len(lost),
        "ready_again_s": wait_for(lambda: lab.node_states().get("h2") == "ready", BOUND_S, 0.1),
        "doctor_clean_s": _wait_clean(lab, healed),
    }


def _no_loss(lab: Lab, svc: str, fault: Callable[[float], dict[str, Any]]) -> dict[str, Any]:
    """A fault on the manager that must cost no task: what it cost, and how long until clean.
    ``fault(start)`` applies it and returns figures of its own (timed from ``start``)."""
    before = _prepare(lab, svc)
    start = time.monotonic()
    out = fault(start)
    hosts = {h.name for h in lab.topo.hosts}
    seen_down: set[str] = set()

    def states() -> dict[str, str]:
        now = lab.node_states()
        seen_down.update(h for h, s in now.items() if s == "down")
        return now

    ready_s = wait_for(
        lambda: set(states().items()) == {(h, "ready") for h in hosts},
        BOUND_S,
        0.1,
        since=start,
    )
    clean_s = wait_for(lambda: states() and doctor_clean(lab), DOCTOR_BOUND_S, 0.5, since=start)
    grace_end = start + (ready_s or BOUND_S) + GRACE_WAIT_S  # past the new leader's grace
    while time.monotonic() < grace_end:
        states()
        time.sleep(0.1)
    return {
        **out,
        "all_ready_s": ready_s,
        "doctor_clean_s": clean_s,
        "nodes_seen_down": sorted(seen_down),
        "replaced": len(set(before) - set(_on(lab, svc))),
    }


def manager_ferryd(lab: Lab, svc: str) -> dict[str, Any]:
    """kill -9 of h1's ferryd (the only manager), started again at once."""

    def restart(start: float) -> dict[str, Any]:
        lab.lab("stop", "h1", "--kill")
        lab.lab("start", "h1")
        return {"api_back_s": round(time.monotonic() - start, 2)}

    return _no_loss(lab, svc, restart)


def etcd(lab: Lab, svc: str) -> dict[str, Any]:
    """kill -9 of h1's etcd member (ferryd restarts it)."""
    old = lab.etcd_pid()
    if old is None:
        raise RuntimeError(f"{lab.name}: no etcd on h1")

    def kill(start: float) -> dict[str, Any]:
        proc.kill_pids([old], signal.SIGKILL)
        back = wait_for(lambda: lab.etcd_pid() not in (None, old), BOUND_S, 0.1, since=start)
        store = wait_for(
            lambda: lab.cli("h1", "node", "ls", check=False).returncode == 0, BOUND_S, since=start
        )
        return {"etcd_back_s": back, "store_answers_s": store}

    return _no_loss(lab, svc, kill)


FAULTS: dict[str, Callable[[Lab, str], dict[str, Any]]] = {
    "kill -9 worker ferryd": worker_ferryd,
    "kill -9 manager ferryd": manager_ferryd,
    "kill -9 etcd": etcd,
    "kill -9 whole host": whole_host,
    "underlay partition 20 s": partition,
}


def fault_suite(root: Path, tries: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, fault in FAULTS.items():
        with fresh_lab(root) as lab:
            runs = []
            for i in range(tries):
                runs.append(fault(lab, f"s{i}"))
                lab.cli("h1", "service", "rm", f"s{i}", check=False)
        out[kind] = {"tries": tries, **summarise(runs), "runs": runs}
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per numeric figure over the tries: its values; None (not within the bound) kept."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) or v is None]
    return {k: [r[k] for r in runs] for k in keys}
