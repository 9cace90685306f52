"""Issue 8's figures, before and after: its failing inputs 1-6 replayed on labs of a checkout,
and (where the checkout has ``ferry doctor``) the fault suite's times to Down, to reschedule and
to doctor-clean.

The labs run the code of the checkout at ``--root`` (default: this repository): every lab is
made, changed and removed by ``<root>/.venv/bin/ferry`` (``lab up/exec/stop/start/down``), so
the same benchmark measures an older checkout as it measures this one. Each input runs N tries
(``--tries``; by default 6 for input 1, 3 for the others and for each fault kind); what each
figure means is written beside it in the JSON (``meanings``). The figures are counts where they
can be (tries, failures, connections, task records) because this 2-vCPU machine is shared;
times are given per try and include polling.

Results go to benchmarks/results/faults.json under the run's label (``--label``; by default
``after`` for this repository and ``before`` for another checkout), beside the other label's
run, with the headline figures of both side by side. Needs root.

Run from the repository root:
    .venv/bin/python -m benchmarks.faults                         # this checkout ("after")
    .venv/bin/python -m benchmarks.faults --root ../wt-before     # an older one ("before")
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import fault_inputs as inputs
from benchmarks.common import RESULTS, other_ferryds, progress, write
from benchmarks.fault_suite import FAULTS, fault_suite
from benchmarks.faultlab import LEFTOVERS

REPO = Path(__file__).resolve().parent.parent
MAX_TRIES = 20

INPUTS: list[tuple[str, Callable[[Path, int], dict[str, Any]], int]] = [
    ("input_1_first_endpoint", inputs.input_1, 6),
    ("input_2_full_network", inputs.input_2, 3),
    ("input_3_manager_restart", inputs.input_3, 3),
    ("input_4_global_host_port", inputs.input_4, 3),
    ("input_5_published_port_restarts", inputs.input_5, 3),
    ("input_6_dead_host_names", inputs.input_6, 3),
]

MEANINGS = {
    "input_1_first_endpoint": "N new overlays on one fresh lab, each with a service of 1 task "
    "constrained to h2 (created with -d, waited for on /tasks). A try fails when a task "
    "attempt failed, or when the running task's container on h2 has no eth0 with the task's "
    "address 2 s after it was first seen running (failures = such tries).",
    "input_2_full_network": "Per try, a fresh lab: overlay 'small' 10.50.0.0/28, service 'many' "
    "on it scaled to 14, then service 'other' (no network). other_running_s: from the create "
    "call until a task of 'other' runs (None: not within 15 s). At 15 s: the live tasks of "
    "'many' by state, and how many Pending ones carry a reason (Status.Err or Message). "
    "leader_warnings_per_s: level=warning|error lines in h1's ferryd.log over the next 10 s.",
    "input_3_manager_restart": "Per try, a fresh lab: 3 replicas on an attachable overlay; "
    "ferry lab stop h1 --kill, 5 s, ferry lab start h1, then h1's /nodes polled every 0.1 s for "
    "20 s. replaced: of the 3 original task ids, how many no longer run; "
    "every_node_showed_down: each of h1-h3 was listed Down at least once; running_on_manager: "
    "running tasks on h1 at the end.",
    "input_4_global_host_port": "Per try, a fresh lab: a global service with a host-mode port "
    "9003; h3's ferryd killed, 15 s, started, 15 s. running_after_15s: its running tasks "
    "(of 3). new_task_records_per_s: task ids not seen before, over 10 s of /tasks polled every "
    "0.2 s (a lower bound: a record made and removed between two polls is not seen).",
    "input_5_published_port_restarts": "Per try, a fresh lab with client c1: a service of 2 "
    "replicas publishing 8090 (ingress); from c1 (inside the lab) a new curl connection to "
    "h2:8090 every 50 ms (max 1 s each) across a graceful stop+start of h2's ferryd and then a "
    "kill -9 + start. failed: attempts that did not get an HTTP answer, counted from the stop "
    "until 1.5 s after the start returned (curl exit 7 = refused, 28 = timeout); 'control' is "
    "a 10 s window before, with no restart (what the machine's load alone costs).",
    "input_6_dead_host_names": "Per try, a fresh lab: attachable overlay, container 'asker' on "
    "h2 and 'far' on h3; a getaddrinfo('far') loop in asker every 20 ms. down_s: kill -9 of "
    "h3's ferryd until h1 lists h3 Down; unresolved_s: until 'far' stops resolving in asker "
    "(None: still resolving 60 s after the kill); resolves_again_s: from the start of h3's "
    "ferryd until 'far' resolves (0: it never stopped).",
    "fault_suite": "Only where the checkout has ferry doctor: see benchmarks/fault_suite.py. "
    "Per fault kind one fresh lab, a new 3-replica service per try. down_s / rescheduled_s "
    "from the fault; doctor_clean_s from the recovery (start or healed link) for the worker, "
    "host and partition faults, from the fault for the manager and etcd ones; replaced and "
    "nodes_seen_down 8 s after every node is ready again. None: not within 30 s (doctor 60 s).",
    "lab_down_leftover_namespaces": "namespaces a first 'ferry lab down' left behind (input 8); "
    "it is repeated until none is left.",
    "load": "loadavg and other labs' ferryds at the start and end: this 2-vCPU machine is "
    "shared, so times are only comparable between runs on a quiet machine; counts much less "
    "so.",
}


def _shown(values: list[Any]) -> str:
    return ", ".join("none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                     for v in values)  # fmt: skip


def _of(section: dict[str, Any], window: str) -> str:
    return f"{section[f'{window}_failed']} of {section[f'{window}_attempts']}"


def headline(f: dict[str, Any]) -> dict[str, str]:
    """One line per figure of a run, as the side-by-side table shows it."""
    i1, i2, i3 = (
        f["input_1_first_endpoint"],
        f["input_2_full_network"],
        f["input_3_manager_restart"],
    )
    i4, i5 = f["input_4_global_host_port"], f["input_5_published_port_restarts"]
    i6 = f["input_6_dead_host_names"]
    listed = sum(1 for r in i6["runs"] if r["far_in_network_inspect_while_down"])
    rows = {
        "1: tries with a task lacking its eth0 (or failed)": f"{i1['failures']}/{i1['tries']}",
        "2: 'other' running within 15 s": f"{i2['other_ran_within_15s']}/{i2['tries']}",
        "2: tries with a Pending reason on 'many'": f"{i2['pending_reason_visible']}/{i2['tries']}",
        "2: leader warnings per s (h1 log)": _shown(i2["leader_warnings_per_s"]),
        "3: original tasks replaced, per try (of 3)": _shown(i3["replaced_per_try"]),
        "3: nodes h1 listed Down after the restart, per try": "; ".join(
            " ".join(r["nodes_seen_down"]) or "none" for r in i3["runs"]
        ),
        "3: tries with 3/3 running after 20 s": f"{i3['recovered_tries']}/{i3['tries']}",
        "3: of those, running on the manager": _shown(
            [r["running_on_manager"] for r in i3["runs"]]
        ),
        "4: running 15 s after h3 returned (of 3)": _shown(i4["running_after_15s"]),
        "4: new task records per s": _shown(i4["new_task_records_per_s"]),
        "5: failed connections, no restart (control)": _of(i5, "control"),
        "5: failed connections, graceful restart": _of(i5, "graceful"),
        "5: failed connections, kill -9 restart": _of(i5, "kill"),
        "6: h3 Down after its ferryd is killed (s)": _shown(i6["down_s"]),
        "6: 'far' unresolvable on h2 after the kill (s)": _shown(i6["unresolved_s"]),
        "6: 'far' resolves again after the restart (s)": _shown(i6["resolves_again_s"]),
        "6: tries where network inspect lists 'far' while h3 is Down": f"{listed}/{i6['tries']}",
        "8: namespaces left by a first lab down": str(len(f["lab_down_leftover_namespaces"])),
    }
    suite = f.get("fault_suite") or {}
    for kind in [k for k in FAULTS if k in suite] + [k for k in suite if k not in FAULTS]:
        figs = suite[kind]
        for key in ("down_s", "rescheduled_s", "lost_on_healthy", "all_ready_s", "replaced",
                    "doctor_clean_s"):  # fmt: skip
            if key in figs:
                rows[f"fault {kind}: {key}"] = _shown(figs[key])
    return rows


def _git(root: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False).stdout.strip()  # fmt: skip

    dirty = git("status", "--porcelain", "--", "ferry")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted ferry/" if dirty else "")


def _has_doctor(root: Path) -> bool:
    ferry = [str(root / ".venv" / "bin" / "ferry"), "doctor", "--help"]
    return subprocess.run(ferry, capture_output=True, check=False, timeout=60).returncode == 0


def measure(root: Path, tries: int | None, began: float) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "root": str(root),
        "git": _git(root),
        "loadavg_at_start": os.getloadavg()[0],
        "other_ferryds_at_start": other_ferryds(""),
    }
    for key, replay, default in INPUTS:
        load = os.getloadavg()[0]
        figures[key] = {**replay(root, tries or default), "loadavg_at_start": load}
        progress(began, f"{key} measured", {k: v for k, v in figures[key].items() if k != "runs"})
    if _has_doctor(root):
        figures["fault_suite"] = fault_suite(root, tries or 3)
        progress(began, "fault suite measured")
    else:
        figures["fault_suite"] = None  # no ferry doctor, the suite's oracle, in this checkout
    figures["lab_down_leftover_namespaces"] = list(LEFTOVERS)
    figures["total_runtime_s"] = round(time.perf_counter() - began, 1)
    figures["loadavg_at_end"] = os.getloadavg()[0]
    figures["other_ferryds_at_end"] = other_ferryds("")
    figures["cpus"] = os.cpu_count()
    return figures


def merge(label: str, figures: dict[str, Any]) -> dict[str, Any]:
    """This run under ``label`` beside the runs already in faults.json, and both side by side."""
    path = RESULTS / "faults.json"
    merged: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    merged[label] = figures
    merged["meanings"] = MEANINGS
    rows: dict[str, dict[str, str]] = {}
    for run in _labels(merged):
        for name, value in headline(merged[run]).items():
            rows.setdefault(name, {})[run] = value
    merged["side_by_side"] = rows
    return merged


def _labels(merged: dict[str, Any]) -> list[str]:
    """The runs in faults.json: before, after, then any other label."""
    others = sorted(k for k in merged if k not in ("before", "after", "meanings", "side_by_side"))
    return [k for k in ("before", "after") if k in merged] + others


def report(merged: dict[str, Any]) -> None:
    labels = _labels(merged)
    print(f"\n{'figure':<62} " + " ".join(f"{label:<22}" for label in labels))
    for name, values in merged["side_by_side"].items():
        print(f"{name:<62} " + " ".join(f"{values.get(label, '-'):<22}" for label in labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO, help="checkout whose code to measure")
    parser.add_argument("--tries", type=int, help="tries of every input (default: 6 / 3)")
    parser.add_argument("--label", help="key in faults.json (default: after / before)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    root = args.root.resolve()
    if not (root / ".venv" / "bin" / "ferry").exists():
        sys.exit(f"{root} has no .venv/bin/ferry: run make setup there first")
    if args.tries is not None and not 1 <= args.tries <= MAX_TRIES:
        sys.exit(f"--tries must be between 1 and {MAX_TRIES}")
    label = args.label or ("after" if root == REPO else "before")
    began = time.perf_counter()
    figures = measure(root, args.tries, began)
    merged = merge(label, figures)
    write("faults", merged)
    report(merged)


if __name__ == "__main__":
    main()
