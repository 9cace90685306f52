"""Container runtime figures, runc under conmon side by side with the old shell runtime.

Each side runs in its own lab, with its own code: this checkout (runc + conmon) and the old
runtime at /work/wt-before (a shell shim that unshares and chroots; ``make setup`` there
first). The same script measures both: for the old side it is run by that checkout's Python,
so ``ferry`` is the old code; it only uses the lab module and the local API, which both have.

1. ``create_to_running``: POST /containers/create then /start (start returns once the command
   runs), a container with only ``lo``, 20 times in a row: p50, p95.
2. ``run_to_pingable``: two hosts in a swarm on an attachable overlay; a container on h1 pings
   a name in a loop (``ping -c1 -W 0.05``) while h2 creates and starts the container of that
   name; the time from the create to the first reply, seen by the benchmark (10 runs). Target:
   p50 <= 200 ms (Docker 20.10 measured 424-446 ms on this machine).
3. ``hundred``: 100 containers (``sleep``, only ``lo``) started one after the other on one
   host: the time, then the RSS of ferryd and of each container's monitor (conmon, or the old
   shell shim), read from /proc.

Both sides use the ``tools`` image (scripts/tools-image.sh), imported into each host.
Writes benchmarks/results/runtime.json. Needs root. Takes about 4 minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
THIS_ROOT = HERE.parents[1]
OLD_ROOT = Path(os.environ.get("FERRY_OLD_RUNTIME", "/work/wt-before"))
TOOLS_TAR = Path(os.environ.get("FERRY_TOOLS_IMAGE", "/var/cache/ferry/tools.tar"))
SIDES = {"runc": (THIS_ROOT, "10.26.0.0/24", "rtbr"), "shell": (OLD_ROOT, "10.26.1.0/24", "rtbs")}
CREATE_N = 20
PING_N = 10
HUNDRED = 100
NET = "rtbench"
TARGET_PINGABLE_MS = 200.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- one side, run by that side's Python ------------------------------------------------------
@contextlib.contextmanager
def side_lab(name: str, subnet: str, hosts: int) -> Iterator[Any]:
    from ferry.lab import lab as labmod

    labmod.down(name)
    topo = labmod.up(name, hosts, 0, subnet)
    try:
        yield topo
    finally:
        labmod.down(name)


def ferry_cli(topo: Any, host: str, *args: str, timeout_s: float = 300) -> str:
    ferry = str(Path(sys.executable).parent / "ferry")
    env = dict(os.environ, FERRY_HOST=f"unix://{topo.node(host).socket}")
    result = subprocess.run([ferry, *args], env=env, capture_output=True, text=True,
                            timeout=timeout_s, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"ferry {' '.join(args)} on {host}: {result.stderr.strip()}")
    return result.stdout


def api(topo: Any, host: str) -> Any:
    from ferry.api.client import ApiClient

    return ApiClient(f"unix://{topo.node(host).socket}", timeout_s=60)


def body(networks: str = "none") -> dict[str, Any]:
    if networks == "none":
        return {"Image": "tools", "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": "none"}}
    return {
        "Image": "tools",
        "Cmd": ["sleep", "3600"],
        "HostConfig": {"NetworkMode": networks},
        "NetworkingConfig": {"EndpointsConfig": {networks: {}}},
    }


def measure_create(topo: Any) -> dict[str, Any]:
    client = api(topo, "h1")
    times, ids = [], []
    for n in range(CREATE_N):
        start = time.perf_counter()
        cid = client.post("/containers/create", body(), name=f"cr{n}")["Id"]
        client.post(f"/containers/{cid}/start")
        times.append(time.perf_counter() - start)
        ids.append(cid)
    for cid in ids:
        client.delete(f"/containers/{cid}", force=True)
    return {
        "create_to_running_p50_ms": statistics.median(times) * 1e3,
        "create_to_running_p95_ms": percentile(times, 95) * 1e3,
        "create_to_running_runs_ms": [round(t * 1e3, 1) for t in times],
    }


def read_line(fd: int, timeout_s: float) -> str:
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


def measure_pingable(topo: Any) -> dict[str, Any]:
    h1 = topo.node("h1").addr
    ferry_cli(topo, "h1", "swarm", "init", "--advertise-addr", h1)
    token = ferry_cli(topo, "h1", "swarm", "join-token", "-q", "worker").strip()
    from ferry.lab import records

    argv, env = records.exec_argv(topo, "h2", ["ferry", "swarm", "join", "--token", token,
                                              f"{h1}:2377"])  # fmt: skip
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)
    ferry_cli(topo, "h1", "network", "create", "-d", "overlay", "--attachable", NET)
    ferry_cli(topo, "h1", "run", "-d", "--network", NET, "--name", "pinger", "tools", "sleep",
              "3600")  # fmt: skip
    h2 = api(topo, "h2")
    ferry = str(Path(sys.executable).parent / "ferry")
    samples: list[float] = []
    for n in range(PING_N):
        name = f"p{n}"
        loop = f"echo ready; until ping -c1 -W 0.05 {name} >/dev/null 2>&1; do :; done; echo up"
        pinger = subprocess.Popen(
            [ferry, "exec", "pinger", "timeout", "20", "sh", "-c", loop],
            env=dict(os.environ, FERRY_HOST=f"unix://{topo.node('h1').socket}"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert pinger.stdout is not None
            if read_line(pinger.stdout.fileno(), 20).strip() != "ready":
                raise RuntimeError("the pinger did not start")
            start = time.perf_counter()
            cid = h2.post("/containers/create", body(NET), name=name)["Id"]
            h2.post(f"/containers/{cid}/start")
            if read_line(pinger.stdout.fileno(), 25).strip() != "up":
                raise RuntimeError(f"{name} never answered")
            samples.append(time.perf_counter() - start)
        finally:
            if pinger.poll() is None:
                pinger.kill()
            pinger.wait()
    return {
        "run_to_pingable_p50_ms": statistics.median(samples) * 1e3,
        "run_to_pingable_p95_ms": percentile(samples, 95) * 1e3,
        "run_to_pingable_runs_ms": [round(s * 1e3, 1) for s in samples],
    }


def measure_hundred(topo: Any) -> dict[str, Any]:
    client = api(topo, "h1")
    host = topo.node("h1")
    ferryd = int((host.run_dir / "ferryd.pid").read_text())
    ferryd_before = rss_kib(ferryd)
    start = time.perf_counter()
    for n in range(HUNDRED):
        cid = client.post("/containers/create", body(), name=f"h{n}")["Id"]
        client.post(f"/containers/{cid}/start")
    elapsed = time.perf_counter() - start
    monitors = []
    for state in (host.state_dir / "containers").glob("*/state.json"):
        monitors.append(int(json.loads(state.read_text())["shim_pid"]))
    monitor_rss = [rss_kib(pid) for pid in monitors]
    return {
        "hundred_start_s": elapsed,
        "hundred_per_container_ms": elapsed / HUNDRED * 1e3,
        "ferryd_rss_before_mib": ferryd_before / 1024,
        "ferryd_rss_with_100_mib": rss_kib(ferryd) / 1024,
        "monitor_rss_total_mib": sum(monitor_rss) / 1024,
        "monitor_rss_each_kib": statistics.median(monitor_rss) if monitor_rss else 0,
        "monitors_found": len([r for r in monitor_rss if r]),
    }


def run_side(side: str) -> dict[str, Any]:
    _root, subnet, name = SIDES[side]
    figures: dict[str, Any] = {"side": side, "loadavg_at_start": os.getloadavg()[0]}
    with side_lab(name, subnet, hosts=2) as topo:
        for host in ("h1", "h2"):
            ferry_cli(topo, host, "image", "import", str(TOOLS_TAR), "tools")
        figures |= measure_create(topo)
        figures |= measure_pingable(topo)
    with side_lab(name, subnet, hosts=1) as topo:
        ferry_cli(topo, "h1", "image", "import", str(TOOLS_TAR), "tools")
        figures |= measure_hundred(topo)
    figures["loadavg_at_end"] = os.getloadavg()[0]
    return figures


# --- both sides ---------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--side":
        print(json.dumps(run_side(sys.argv[2])))
        return
    if os.geteuid() != 0:
        sys.exit("benchmarks/runtime.py needs root (it builds labs)")
    results: dict[str, Any] = {"began": time.time()}
    for side, (root, _subnet, _name) in SIDES.items():
        python = root / ".venv" / "bin" / "python"
        if not python.exists():
            sys.exit(f"{python} is missing: run 'make setup' in {root}")
        with tempfile.TemporaryFile() as err:
            done = subprocess.run(
                [str(python), str(HERE), "--side", side], cwd=root, stdout=subprocess.PIPE,
                stderr=err, text=True, timeout=1800, check=False,
                env=dict(os.environ, PYTHONPATH=str(root)),
            )  # fmt: skip
            if done.returncode != 0:
                err.seek(0)
                sys.exit(f"{side} side failed: {err.read().decode()[-2000:]}")
        results[side] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{side}: {json.dumps(results[side], indent=1)}", file=sys.stderr)
    p50 = results["runc"]["run_to_pingable_p50_ms"]
    results["targets"] = {
        "run_to_pingable_p50_ms": {
            "target": f"<= {TARGET_PINGABLE_MS}",
            "measured": round(p50, 1),
            "pass": p50 <= TARGET_PINGABLE_MS,
        }
    }
    results["cpus"] = os.cpu_count()
    out = THIS_ROOT / "benchmarks" / "results" / "runtime.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(json.dumps(results, indent=2, sort_keys=True))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
