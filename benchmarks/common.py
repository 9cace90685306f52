"""Shared helpers for benchmarks: a lab that is always torn down, timing, RSS, JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ferry.lab import lab as labmod
from ferry.lab.topology import LabTopology

FERRY = str(Path(sys.executable).parent / "ferry")
RESULTS = Path(__file__).resolve().parent / "results"


def run(argv: list[str], timeout_s: float = 60, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-800:]}"
        )
    return result.stdout


def git_state() -> str:
    """The commit measured, and whether ferry/ had uncommitted changes (others edit it)."""
    try:
        head = run(["git", "rev-parse", "--short", "HEAD"]).strip()
        dirty = run(["git", "status", "--porcelain", "--", "ferry"])
    except (RuntimeError, OSError):
        return "unknown"
    changed = " ".join(line[3:] for line in dirty.splitlines())
    return head + (f" + uncommitted: {changed}" if changed else "")


def other_ferryds(lab_name: str) -> int:
    """ferryd processes of other labs on this machine (they compete for the same 2 vCPUs)."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"ferry.daemon" in argv and not any(f"/lab/{lab_name}/".encode() in a for a in argv):
            count += 1
    return count


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ferry_env(topo: LabTopology, host: str) -> dict[str, str]:
    return dict(os.environ, FERRY_HOST=f"unix://{topo.node(host).socket}")


def ferry(topo: LabTopology, host: str, *args: str, timeout_s: float = 60) -> str:
    """The ferry CLI against a host's ferryd (its socket is a file), bounded in time."""
    return run([FERRY, *args], timeout_s, ferry_env(topo, host))


def join_swarm(topo: LabTopology) -> None:
    """h1 initialises the swarm, every other host joins it as a worker."""
    h1 = topo.node("h1").addr
    lab_exec(topo, "h1", "ferry", "swarm", "init", "--advertise-addr", h1)
    token = ferry(topo, "h1", "swarm", "join-token", "-q", "worker").strip()
    for host in topo.hosts[1:]:
        lab_exec(topo, host.name, "ferry", "swarm", "join", "--token", token, f"{h1}:2377")


def dnsperf_figures(output: str) -> dict[str, float]:
    def number(label: str) -> float:
        match = re.search(rf"{label}:\s+([0-9.]+)", output)
        if match is None:
            raise RuntimeError(f"no {label!r} in dnsperf output:\n{output}")
        return float(match.group(1))

    return {
        "qps": number("Queries per second"),
        "sent": number("Queries sent"),
        "completed": number("Queries completed"),
        "lost": number("Queries lost"),
        "avg_latency_ms": number("Average Latency \\(s\\)") * 1000,
    }


def lab_exec(topo: LabTopology, host: str, *cmd: str, timeout_s: float = 120) -> str:
    result = subprocess.run(
        [FERRY, "lab", "exec", "--name", topo.name, host, "--", *cmd],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} on {host}: {result.stderr.strip()}")
    return result.stdout


@contextlib.contextmanager
def lab(
    name: str, hosts: int = 3, clients: int = 0, subnet: str = "10.97.0.0/24"
) -> Iterator[LabTopology]:
    labmod.down(name)
    topo = labmod.up(name, hosts, clients, subnet)
    try:
        import_tools(topo)
        yield topo
    finally:
        labmod.down(name)


TOOLS_TAR = Path(os.environ.get("FERRY_TOOLS_IMAGE", "/var/cache/ferry/tools.tar"))


def import_tools(topo: LabTopology) -> None:
    """The ``tools`` image (scripts/tools-image.sh builds it) on every host, side by side."""
    if not TOOLS_TAR.exists():
        raise RuntimeError(f"{TOOLS_TAR} is missing: run scripts/tools-image.sh (make bench)")
    with ThreadPoolExecutor() as pool:
        list(pool.map(lambda h: ferry(topo, h.name, "image", "import", str(TOOLS_TAR), "tools",
                                      timeout_s=300), topo.hosts))  # fmt: skip


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def record_runs(figures: dict[str, Any], key: str, values: list[float], digits: int = 3) -> None:
    """A figure as the median of its runs, and every run beside it (``<key>_runs``)."""
    figures[key] = median(values)
    figures[f"{key}_runs"] = [round(v, digits) for v in values]


# (figure, target, measured, met): what each benchmark's verdicts() returns
Verdict = tuple[str, str, str, bool]


def progress(began: float, what: str, figures: dict[str, Any] | None = None) -> None:
    """A progress line on stderr with the time since ``began``, and a section's figures."""
    print(f"[{time.perf_counter() - began:6.1f} s] {what}", file=sys.stderr, flush=True)
    for key, value in (figures or {}).items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"    {key}: {shown}", file=sys.stderr, flush=True)


def opening_figures(lab_name: str) -> dict[str, Any]:
    """What a run records before it starts: the code the ferryds will run and how busy the
    machine is (figures are only comparable on a quiet machine)."""
    return {
        "git": git_state(),
        "loadavg_at_start": os.getloadavg()[0],
        "other_ferryds_at_start": other_ferryds(lab_name),
    }


def close_figures(
    figures: dict[str, Any], verdicts: list[Verdict], began: float, lab_name: str
) -> None:
    figures["total_runtime_s"] = time.perf_counter() - began
    figures["targets"] = {
        name.strip(): {"target": target, "measured": measured, "pass": ok}
        for name, target, measured, ok in verdicts
    }
    figures["cpus"] = os.cpu_count()
    figures["loadavg_at_end"] = os.getloadavg()[0]
    figures["other_ferryds_at_end"] = other_ferryds(lab_name)


def write(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))
    print(json.dumps(figures, indent=2, sort_keys=True))
    print(f"written to {path}")
    return path
