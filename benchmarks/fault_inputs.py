"""Issue 8's failing inputs 1-6, replayed on labs of any checkout (see ``benchmarks.faults``).

Each ``input_N(root, tries)`` returns its figures: one dict per try under ``runs`` and the
counts over the tries. Input 1 runs its tries on one fresh lab, as the issue did (each try is a
new network, so each task is the first endpoint of its network on h2); inputs 2-6 build a fresh
lab per try, so a try that breaks the cluster (the old code) does not spoil the next one.

Be aware: services are created with ``-d`` and waited for by polling ``/tasks`` here, in both
checkouts (``service create -q`` did not wait in the old code, and does in the new one).
"""

from __future__ import annotations

import collections
import re
import time
from pathlib import Path
from typing import Any

from benchmarks.faultlab import Lab, LineWatch, fresh_lab, hammer, resolver, wait_for

SERVE = ("python3", "-m", "http.server", "80")  # after the lab's image
SMALL = "10.50.0.0/28"  # the full network: 16 addresses
CREATE_TIMEOUT_S = 60
UNRESOLVE_BOUND_S = 60  # the old code kept a dead host's names for 95 s and more
CONTROL_S = 10.0  # input 5: connections with no restart, to tell a gap from a busy machine


def _service(lab: Lab, name: str, *args: str) -> None:
    lab.cli("h1", "service", "create", "-d", "--name", name, *args)


def _wait_running(lab: Lab, name: str, count: int) -> None:
    if wait_for(lambda: len(lab.running(name)) == count, CREATE_TIMEOUT_S, 0.25) is None:
        states = [t["Status"]["State"] for t in lab.tasks(name)]
        raise RuntimeError(f"{lab.name}: {name} not {count} running in 60 s ({states})")


# --- input 1: the first endpoint of a network on a node gets its interface --------------------
def input_1(root: Path, tries: int) -> dict[str, Any]:
    with fresh_lab(root) as lab:
        runs = [_race_try(lab, i) for i in range(tries)]
    return {"tries": tries, "failures": sum(1 for r in runs if not r["ok"]), "runs": runs}


def _eth0(lab: Lab, container: str) -> str:
    argv = ("exec", container, "ip", "-o", "-4", "addr", "show", "eth0")
    out = lab.cli("h2", *argv, check=False).stdout.split()
    return out[3].split("/")[0] if len(out) > 3 else ""


def _race_try(lab: Lab, i: int) -> dict[str, Any]:
    svc, net = f"race{i}", f"racenet{i}"
    lab.cli("h1", "network", "create", "-d", "overlay", net)
    _service(
        lab, svc, "--network", net, "--constraint", "node.hostname==h2", lab.image, "sleep", "3600"
    )
    wait_for(lambda: lab.running(svc), CREATE_TIMEOUT_S, 0.25)
    tasks = lab.tasks(svc)
    failed = [t["Status"]["Err"] or t["Status"]["State"] for t in tasks if
              t["Status"]["State"] in ("failed", "rejected")]  # fmt: skip
    running = [t for t in tasks if t["Status"]["State"] == "running"]
    if not running:
        return {"ok": False, "failed_attempts": failed, "why": "no task running in 60 s"}
    want = running[0]["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
    first = _eth0(lab, running[0]["Name"])
    later = first
    if first != want:  # a late interface is no failure; a missing one stays missing
        time.sleep(2)
        later = _eth0(lab, running[0]["Name"])
    return {
        "ok": not failed and later == want,
        "failed_attempts": failed,
        "address": want,
        "eth0_at_first_look": first or None,
        "eth0_2s_later": later or None,
    }


# --- input 2: a full network stalls nothing else ----------------------------------------------
def input_2(root: Path, tries: int) -> dict[str, Any]:
    runs = []
    for _ in range(tries):
        with fresh_lab(root) as lab:
            runs.append(_full_try(lab))
    return {
        "tries": tries,
        "other_ran_within_15s": sum(1 for r in runs if r["other_running_s"] is not None),
        "pending_reason_visible": sum(1 for r in runs if r["pending_with_reason"] > 0),
        "leader_warnings_per_s": [r["leader_warnings_per_s"] for r in runs],
        "runs": runs,
    }


def _full_try(lab: Lab) -> dict[str, Any]:
    lab.cli("h1", "network", "create", "-d", "overlay", "--subnet", SMALL, "small")
    _service(lab, "many", "--network", "small", lab.image, "sleep", "3600")
    lab.cli("h1", "service", "scale", "-d", "many=14")
    start = time.monotonic()
    _service(lab, "other", lab.image, "sleep", "600")
    other_s = wait_for(lambda: lab.running("other"), 15, 0.25, since=start)
    time.sleep(max(0.0, start + 15 - time.monotonic()))
    live = [t for t in lab.tasks("many") if t["DesiredState"] == "running"]
    pending = [t for t in live if t["Status"]["State"] == "pending"]
    reasons = {t["Status"]["Err"] or t["Status"]["Message"] for t in pending} - {""}
    warnings, seconds, top = _log_rate(lab, "h1", 10.0)
    return {
        "other_running_s": other_s,
        "many_tasks_by_state": dict(collections.Counter(t["Status"]["State"] for t in live)),
        "pending_with_reason": sum(
            1 for t in pending if t["Status"]["Err"] or t["Status"]["Message"]
        ),
        "pending_reasons": sorted(reasons),
        "leader_warnings_per_s": round(warnings / seconds, 2),
        "leader_top_warning": top,
    }


def _log_rate(lab: Lab, host: str, seconds: float) -> tuple[int, float, str]:
    """Warning and error lines ``host``'s ferryd logs over ``seconds``; the commonest one."""
    path = lab.log_path(host)
    offset = path.stat().st_size
    start = time.monotonic()
    time.sleep(seconds)
    with path.open("rb") as log:
        log.seek(offset)
        new = log.read().decode(errors="replace").splitlines()
    elapsed = time.monotonic() - start
    bad = [line for line in new if re.search(r" level=(warning|error) ", line)]
    messages = collections.Counter(
        m.group(1) for line in bad if (m := re.search(r" msg=(\"[^\"]*\"|\S+)", line))
    )
    return len(bad), elapsed, messages.most_common(1)[0][0] if messages else ""


# --- input 3: a short restart of the only manager -----------------------------------------
def input_3(root: Path, tries: int) -> dict[str, Any]:
    runs = []
    for _ in range(tries):
        with fresh_lab(root) as lab:
            runs.append(_restart_try(lab))
    return {
        "tries": tries,
        "replaced_per_try": [r["replaced"] for r in runs],
        "every_node_down_tries": sum(1 for r in runs if r["every_node_showed_down"]),
        "recovered_tries": sum(1 for r in runs if r["running"] == 3),
        "runs": runs,
    }


def _restart_try(lab: Lab) -> dict[str, Any]:
    lab.cli("h1", "network", "create", "-d", "overlay", "--attachable", "mnet")
    _service(lab, "web", "--network", "mnet", "--replicas", "3", lab.image, *SERVE)
    _wait_running(lab, "web", 3)
    manager = lab.node_ids()["h1"]
    before = {t["ID"] for t in lab.running("web")}
    lab.lab("stop", "h1", "--kill")
    time.sleep(5)  # the input's outage
    lab.lab("start", "h1")
    seen: dict[str, set[str]] = collections.defaultdict(set)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        for host, state in lab.node_states().items():
            seen[host].add(state)
        time.sleep(0.1)
    after = lab.running("web")
    return {
        "replaced": len(before - {t["ID"] for t in after}),
        "running": len(after),
        "running_on_manager": sum(1 for t in after if t["NodeID"] == manager),
        "nodes_seen_down": sorted(h for h, states in seen.items() if "down" in states),
        "every_node_showed_down": all("down" in seen[h.name] for h in lab.topo.hosts),
    }


# --- input 4: a global service with a host-mode port after a worker was away ---------------
def input_4(root: Path, tries: int) -> dict[str, Any]:
    runs = []
    for _ in range(tries):
        with fresh_lab(root) as lab:
            runs.append(_global_try(lab))
    return {
        "tries": tries,
        "running_after_15s": [r["running_after_15s"] for r in runs],
        "new_task_records_per_s": [r["new_task_records_per_s"] for r in runs],
        "runs": runs,
    }


def _global_try(lab: Lab) -> dict[str, Any]:
    _service(
        lab,
        "g",
        "--mode",
        "global",
        "--publish",
        "published=9003,target=80,mode=host",
        lab.image,
        *SERVE,
    )
    _wait_running(lab, "g", 3)
    lab.lab("stop", "h3", "--kill")
    time.sleep(15)
    lab.lab("start", "h3")
    time.sleep(15)
    running = len(lab.running("g"))
    first = {t["ID"] for t in lab.tasks("g")}
    seen = set(first)
    start = time.monotonic()
    while time.monotonic() - start < 10:
        seen |= {t["ID"] for t in lab.tasks("g")}
        time.sleep(0.2)
    elapsed = time.monotonic() - start
    return {
        "running_after_15s": running,
        "new_task_records_per_s": round(len(seen - first) / elapsed, 2),
        "task_records_at_end": len(lab.tasks("g")),
    }


# --- input 5: published ports across restarts of a ferryd ---------------------------------
def input_5(root: Path, tries: int) -> dict[str, Any]:
    runs = []
    for _ in range(tries):
        with fresh_lab(root, clients=1) as lab:
            runs.append(_ports_try(lab))
    return {
        "tries": tries,
        **{
            f"{window}_{key}": sum(r[window][key] for r in runs)
            for window in ("control", "graceful", "kill")
            for key in ("failed", "attempts")
        },
        "runs": runs,
    }


def _ports_try(lab: Lab) -> dict[str, Any]:
    _service(lab, "pub", "-p", "8090:80", "--replicas", "2", lab.image, *SERVE)
    _wait_running(lab, "pub", 2)
    url = f"http://{lab.topo.node('h2').addr}:8090/"

    def answers() -> bool:
        curl = ("curl", "-s", "-o", "/dev/null", "-m", "1", url)
        return lab.exec("c1", *curl, check=False).returncode == 0

    if wait_for(answers, 30, 0.5) is None:
        raise RuntimeError(f"{lab.name}: {url} never answered from c1")
    windows: dict[str, tuple[float, float, float, float]] = {}
    watch = hammer(lab, "c1", url, 90)
    try:
        time.sleep(1)
        began = time.time()  # a control: as long a window with no restart at all
        time.sleep(CONTROL_S)
        windows["control"] = (began, began, began, time.time())
        for kind, flags in (("graceful", ()), ("kill", ("--kill",))):
            began = time.time()
            lab.lab("stop", "h2", *flags)
            stopped = time.time()
            lab.lab("start", "h2")
            started = time.time()
            time.sleep(1.5)
            windows[kind] = (began, stopped, started, time.time())
    finally:
        watch.close()
    return {kind: _window(watch, *times) for kind, times in windows.items()}


def _window(
    watch: LineWatch, began: float, stopped: float, started: float, ended: float
) -> dict[str, Any]:
    """The attempts that ended from the stop until 1.5 s after the start; when each failure
    ended, in seconds after the stop began, beside when the stop and the start returned."""
    codes = [(at, int(rc)) for at, rc in watch.snapshot() if began <= at <= ended]
    failed = [(at, rc) for at, rc in codes if rc != 0]
    return {
        "attempts": len(codes),
        "failed": len(failed),
        "curl_exit_codes": dict(collections.Counter(rc for _, rc in failed)),
        "failed_at_s": [round(at - began, 2) for at, _ in failed],
        "stop_returned_s": round(stopped - began, 2),
        "start_returned_s": round(started - began, 2),
    }


# --- input 6: a dead host's standalone containers leave the others' names -----------------
def input_6(root: Path, tries: int) -> dict[str, Any]:
    runs = []
    for _ in range(tries):
        with fresh_lab(root) as lab:
            runs.append(_dead_host_try(lab))
    return {
        "tries": tries,
        "down_s": [r["down_s"] for r in runs],
        "unresolved_s": [r["unresolved_s"] for r in runs],
        "resolves_again_s": [r["resolves_again_s"] for r in runs],
        "runs": runs,
    }


def _dead_host_try(lab: Lab) -> dict[str, Any]:
    lab.cli("h1", "network", "create", "-d", "overlay", "--attachable", "dnet")
    lab.cli("h2", "run", "-d", "--name", "asker", "--network", "dnet", lab.image, "sleep", "3600")
    lab.cli("h3", "run", "-d", "--name", "far", "--network", "dnet", lab.image, "sleep", "3600")
    watch = resolver(lab, "h2", "asker", "far", 240)
    try:
        if wait_for(lambda: _answer(watch) not in ("", "-"), 15) is None:
            raise RuntimeError(f"{lab.name}: far never resolved in asker")
        killed, mono = time.time(), time.monotonic()
        lab.lab("stop", "h3", "--kill")
        down_s = wait_for(lambda: lab.node_states().get("h3") == "down", 30, 0.1, since=mono)
        wait_for(lambda: _answer(watch) == "-", UNRESOLVE_BOUND_S, since=mono)
        listed = '"far"' in lab.cli("h1", "network", "inspect", "dnet").stdout
        started = time.time()
        lab.lab("start", "h3")
        wait_for(lambda: _answer(watch) not in ("", "-"), 30, since=time.monotonic())
        lines = watch.snapshot()
    finally:
        watch.close()
    return {
        "down_s": down_s,
        "unresolved_s": _first(lines, killed, lambda ips: ips == "-"),
        "far_in_network_inspect_while_down": listed,
        "resolves_again_s": _first(lines, started, lambda ips: ips != "-", carry=True),
    }


def _answer(watch: LineWatch) -> str:
    """The resolver's answer now: its addresses, "-" for none, "" before its first line."""
    lines = watch.snapshot()
    return lines[-1][1] if lines else ""


def _first(
    lines: list[tuple[float, str]], since: float, match: Any, carry: bool = False
) -> float | None:
    """Seconds from ``since`` until the answer first matches; with ``carry`` an answer that
    already matched at ``since`` counts as 0."""
    before = [ips for at, ips in lines if at < since]
    if carry and before and match(before[-1]):
        return 0.0
    for at, ips in lines:
        if at >= since and match(ips):
            return round(at - since, 2)
    return None
