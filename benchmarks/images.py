"""Image figures (issue 11): pulls from the lab registry, ``run`` with and without a pull, a
service from an image no node has, and ``skopeo copy`` alone as the floor, side by side.

What it measures, in one run on a 3-host lab "bim" (underlay 10.28.0.0/24) whose registry node
(``ferry.lab.registry``, 10.28.0.250:5000) mirrors Docker Hub's names from the cached lab
images. The image is the lab's ``nginx`` (one gzip layer of about 37 MB). Each host's ferryd
pulls through that mirror, as every lab host does.

1. ``pull3_cold``: ``POST /images/create?fromImage=nginx&tag=latest`` (what ``docker pull
   nginx`` sends) on h1, h2 and h3 at once, the image absent from all three (``rmi nginx``
   and ``image prune`` first; each store is checked to hold none of nginx's blobs or layers
   any more): the time until the last of the three pulls ends (``_each`` beside it: every
   node's own time). ``pull3_warm``: the same right after, the image present (the "Image is
   up to date" path: one manifest request). ``TRIALS`` trials, interleaved; p50 and max.
   These are API times: the ``ferry pull`` CLI adds its own start on top.
2. ``floor3``: ``skopeo copy`` alone of the same image from the lab registry into a fresh OCI
   directory (``oci:/tmp/...``), on the three hosts at once, each inside its host's network
   namespace (``ferry lab exec``'s ``nsenter``); ``floor1``: the same on h1 alone;
   ``floor1_unpack``: that copy on h1 plus ``tar -xzf`` of its layer into a directory (GNU
   tar and gzip, the cost of unpacking with the system's tools). Same number of trials,
   interleaved with the pulls. A Ferry pull does what ``floor1_unpack`` does, and a manifest
   request first; its unpacking is Ferry's own safe extraction (whiteouts, path checks).
3. ``run_cold`` / ``run_warm``: the ``ferry run -d --network web --name web1 nginx`` CLI on h1
   (the CLI creates, gets "No such image", pulls, creates again and starts, as the docker CLI
   does): the time until the CLI returns with the container started, cold (nginx absent from
   h1) and warm (present); ``_answer`` beside each: until nginx's page answers on port 80 by
   name from another container on the same bridge network (``client``: a ``curl`` loop
   started before the run, through ``ferry exec``, whose "up" line the benchmark reads).
4. ``service6``: a swarm of the three hosts; nginx removed from every node; ``POST
   /services/create`` of 6 nginx replicas on h1 (the manager resolves the digest, each node
   pulls when its tasks are assigned): the time until all 6 tasks are running (GET /tasks,
   polled every 50 ms). ``SERVICE_ROUNDS`` rounds, the image removed everywhere in between;
   ``service6_tasks`` gives each round's tasks per node and ``tasks_created`` (more than 6:
   some task failed and was replaced on the way).

The machine's 1-minute load average is sampled every 5 s during the run (``loadavg_during``):
other work shares these 2 vCPUs, and the cold figures are mostly CPU (gunzip and unpacking:
compare ``floor1`` with ``floor1_unpack``). Writes benchmarks/results/images.json. Needs root
and ``make images``. Takes about 6 minutes (at a load average of 5-8).

Run from the repository root: .venv/bin/python -m benchmarks.images
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import (
    FERRY,
    close_figures,
    ferry,
    ferry_env,
    join_swarm,
    opening_figures,
    percentile,
    progress,
    record_runs,
    run,
    write,
)
from ferry.api.client import ApiClient
from ferry.errors import Conflict, FerryError, NotFound
from ferry.lab import lab as labmod
from ferry.lab import records
from ferry.lab.topology import LabTopology

NAME = "bim"
SUBNET = "10.28.0.0/24"
IMAGE = "nginx"
TOOLS = "ferrylab/tools"
NET = "web"
CLIENT = "client"
WEB = "web1"
TRIALS = 5
SERVICE_ROUNDS = 3
REPLICAS = 6
SERVICE = "web6"
PULL_TIMEOUT_S = 180
CONVERGE_TIMEOUT_S = 180
GONE_TIMEOUT_S = 60
POLL_S = 0.05
LOAD_EVERY_S = 5.0
FLOOR_DIR = Path("/tmp/ferry-bim-floor")


# --- the lab and its stores ---------------------------------------------------------------
@contextlib.contextmanager
def image_lab() -> Iterator[LabTopology]:
    labmod.down(NAME)
    topo = labmod.up(NAME, 3, 0, SUBNET)
    FLOOR_DIR.mkdir(mode=0o700, exist_ok=True)
    try:
        yield topo
    finally:
        labmod.down(NAME)
        shutil.rmtree(FLOOR_DIR, ignore_errors=True)


def api(topo: LabTopology, host: str) -> ApiClient:
    return ApiClient(f"unix://{topo.node(host).socket}", timeout_s=PULL_TIMEOUT_S)


def store_contents(topo: LabTopology, host: str) -> frozenset[str]:
    """The blobs and unpacked layers in a host's image store (file names, by kind)."""
    root = topo.node(host).state_dir / "images"
    found: set[str] = set()
    for kind, path in (("blob", root / "blobs" / "sha256"), ("layer", root / "layers")):
        if path.is_dir():
            found.update(f"{kind}:{entry}" for entry in os.listdir(path))
    return frozenset(found)


def pull(topo: LabTopology, host: str, ref: str = IMAGE) -> tuple[float, str]:
    """Docker's pull request on ``host``: (seconds until the stream ends, its last status).
    Raises RuntimeError when the stream carries an error (Docker's ``{"error": …}``)."""
    name, _, tag = ref.partition(":")
    start = time.perf_counter()
    raw = b"".join(
        api(topo, host).stream(
            "POST", "/images/create", query={"fromImage": name, "tag": tag or "latest"}
        )
    )
    elapsed = time.perf_counter() - start
    messages = [json.loads(line) for line in raw.splitlines() if line.strip()]
    errors = [m["error"] for m in messages if "error" in m]
    if errors or not messages:
        raise RuntimeError(f"pull {ref} on {host}: {errors or 'no answer'}")
    return elapsed, str(messages[-1].get("status", ""))


def remove_image(topo: LabTopology, host: str, baseline: frozenset[str]) -> None:
    """``rmi nginx`` then ``image prune`` on ``host``, retried while a container that is going
    away still holds it; then check that the store is back to ``baseline``."""
    client = api(topo, host)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.delete(f"/images/{IMAGE}")
            break
        except NotFound:
            break
        except Conflict:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    client.post("/images/prune")
    left = store_contents(topo, host) - baseline
    if left:
        raise RuntimeError(f"{host}: after rmi and prune the store still holds {sorted(left)}")


def on_hosts(topo: LabTopology, fn: Callable[[str], Any]) -> list[Any]:
    with ThreadPoolExecutor(len(topo.hosts)) as pool:
        return list(pool.map(fn, [h.name for h in topo.hosts]))


# --- 1 and 2: pulls and the floor ------------------------------------------------------------
def floor_copy(topo: LabTopology, host: str, tag: str, *, unpack: bool = False) -> float:
    """``skopeo copy`` of the image into a fresh OCI directory, inside ``host``'s namespace;
    with ``unpack``, plus ``tar -xzf`` of its layers into a directory (local work only)."""
    target = FLOOR_DIR / f"{host}-{tag}"
    shutil.rmtree(target, ignore_errors=True)
    source = f"docker://{topo.registry_address}/library/{IMAGE}:latest"
    cmd = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", source, f"oci:{target}:latest"]
    argv, env = records.exec_argv(topo, host, cmd)
    try:
        start = time.perf_counter()
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=PULL_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"skopeo copy on {host}: {done.stderr.strip()[-500:]}")
        if unpack:
            rootfs = target / "rootfs"
            rootfs.mkdir()
            for layer in oci_layers(target):
                run(["tar", "-xzf", str(layer), "--numeric-owner", "-C", str(rootfs)], 120)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(target, ignore_errors=True)


def oci_layers(layout: Path) -> list[Path]:
    """The layer blobs of the one image in an OCI layout (its index, then its manifest)."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((blobs / manifest_digest).read_text())
    return [blobs / layer["digest"].split(":", 1)[1] for layer in manifest["layers"]]


def measure_pulls(topo: LabTopology, baselines: dict[str, frozenset[str]]) -> dict[str, Any]:
    keys = ("pull3_cold", "pull3_warm", "floor3", "floor1", "floor1_unpack")
    runs: dict[str, list[float]] = {k: [] for k in keys}
    each: dict[str, list[float]] = {"pull3_cold": [], "pull3_warm": [], "floor3": []}
    statuses: set[str] = set()
    for trial in range(TRIALS):
        on_hosts(topo, lambda h: remove_image(topo, h, baselines[h]))
        for key in ("pull3_cold", "pull3_warm"):
            start = time.perf_counter()
            answers = on_hosts(topo, lambda h: pull(topo, h))
            runs[key].append(time.perf_counter() - start)
            each[key] += [t for t, _ in answers]
            statuses.update(f"{key}: {s}" for _, s in answers)
        start = time.perf_counter()
        each["floor3"] += on_hosts(topo, functools.partial(floor_copy, topo, tag=f"t{trial}"))
        runs["floor3"].append(time.perf_counter() - start)
        runs["floor1"].append(floor_copy(topo, "h1", f"one{trial}"))
        runs["floor1_unpack"].append(floor_copy(topo, "h1", f"unp{trial}", unpack=True))
    figures: dict[str, Any] = {"pull_statuses": sorted(statuses)}
    for key, values in runs.items():
        record_runs(figures, f"{key}_p50_s", values)
        figures[f"{key}_max_s"] = max(values)
    for key, values in each.items():
        figures[f"{key}_each_p50_s"] = percentile(values, 50)
        figures[f"{key}_each_runs"] = [round(v, 3) for v in values]
    figures["pull3_cold_over_floor3"] = figures["pull3_cold_p50_s"] / figures["floor3_p50_s"]
    return figures


# --- 3: run, cold and warm -------------------------------------------------------------------
def read_line(fd: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError(f"no line from the client in {timeout_s:.0f} s")
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode()


def one_run(topo: LabTopology) -> tuple[float, float]:
    """``ferry run -d nginx`` on h1 while ``client`` polls it by name: (seconds until the CLI
    returns, seconds until nginx's page answered in the client)."""
    loop = (
        "echo ready; until curl -sf -m 1 -o /dev/null http://" + WEB + "/; "
        "do sleep 0.05; done; echo up"
    )
    watcher = subprocess.Popen(
        [FERRY, "exec", CLIENT, "timeout", "90", "sh", "-c", loop],
        env=ferry_env(topo, "h1"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None
        if read_line(watcher.stdout.fileno(), 30).strip() != "ready":
            raise RuntimeError("the client's curl loop did not start")
        start = time.perf_counter()
        ferry(topo, "h1", "run", "-d", "--network", NET, "--name", WEB, IMAGE,
              timeout_s=PULL_TIMEOUT_S)  # fmt: skip
        ran = time.perf_counter() - start
        state = api(topo, "h1").get(f"/containers/{WEB}/json")["State"]
        if not state["Running"]:
            raise RuntimeError(f"{WEB} is not running after run -d: {state}")
        if read_line(watcher.stdout.fileno(), 90).strip() != "up":
            raise RuntimeError(f"{WEB} never answered on port 80")
        return ran, time.perf_counter() - start
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait()
        with contextlib.suppress(FerryError):
            api(topo, "h1").delete(f"/containers/{WEB}", force=True)


def measure_runs(topo: LabTopology, baseline: frozenset[str]) -> dict[str, Any]:
    runs: dict[str, list[float]] = {k: [] for k in ("run_cold", "run_warm")}
    answers: dict[str, list[float]] = {k: [] for k in ("run_cold", "run_warm")}
    for _trial in range(TRIALS):
        remove_image(topo, "h1", baseline)
        for key in ("run_cold", "run_warm"):
            ran, answered = one_run(topo)
            runs[key].append(ran)
            answers[key].append(answered)
    figures: dict[str, Any] = {}
    for key, values in runs.items():
        record_runs(figures, f"{key}_p50_s", values)
        figures[f"{key}_max_s"] = max(values)
        record_runs(figures, f"{key}_answer_p50_s", answers[key])
        figures[f"{key}_answer_max_s"] = max(answers[key])
    return figures


# --- 4: a service from nothing ---------------------------------------------------------------
def running_tasks(client: ApiClient) -> list[dict[str, Any]]:
    tasks = client.get("/tasks", filters={"service": [SERVICE]})
    return [
        t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    ]


def wait_gone(topo: LabTopology) -> None:
    """Until no host has a container of the service any more (after it was removed); the
    error names what is left, with each container's state."""
    deadline = time.monotonic() + GONE_TIMEOUT_S
    mine = {"label": [f"com.docker.swarm.service.name={SERVICE}"]}
    while True:
        left = {
            h.name: [
                f"{c['Names'][0]} {c['State']} ({c['Status']})"
                for c in api(topo, h.name).get("/containers/json", all=True, filters=mine)
            ]
            for h in topo.hosts
        }
        if not any(left.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{GONE_TIMEOUT_S} s after service rm {SERVICE}, left: {left}")
        time.sleep(0.2)


def one_service(topo: LabTopology) -> tuple[float, dict[str, int]]:
    client = api(topo, "h1")
    spec = {
        "Name": SERVICE,
        "TaskTemplate": {"ContainerSpec": {"Image": IMAGE}},
        "Mode": {"Replicated": {"Replicas": REPLICAS}},
    }
    start = time.perf_counter()
    client.post("/services/create", spec)
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while len(running := running_tasks(client)) < REPLICAS:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{SERVICE}: {len(running)} of {REPLICAS} running")
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - start
    created = len(client.get("/tasks", filters={"service": [SERVICE]}))
    nodes = {n["ID"]: n["Description"]["Hostname"] for n in client.get("/nodes")}
    per_node: dict[str, int] = {}
    for task in running:
        host = nodes.get(task["NodeID"], task["NodeID"])
        per_node[host] = per_node.get(host, 0) + 1
    client.delete(f"/services/{SERVICE}")
    wait_gone(topo)
    return elapsed, per_node | {"tasks_created": created}


def measure_service(topo: LabTopology, baselines: dict[str, frozenset[str]]) -> dict[str, Any]:
    join_swarm(topo)
    times, spreads = [], []
    for _round in range(SERVICE_ROUNDS):
        on_hosts(topo, lambda h: remove_image(topo, h, baselines[h]))
        elapsed, per_node = one_service(topo)
        times.append(elapsed)
        spreads.append(per_node)
    figures: dict[str, Any] = {"service6_tasks": spreads}
    record_runs(figures, "service6_p50_s", times)
    figures["service6_max_s"] = max(times)
    return figures


# --- the run ---------------------------------------------------------------------------------
class LoadSampler(threading.Thread):
    """The machine's 1-minute load average every LOAD_EVERY_S seconds, until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(round(os.getloadavg()[0], 2))
            self.done.wait(LOAD_EVERY_S)


def prepare(topo: LabTopology) -> dict[str, frozenset[str]]:
    """The client container on h1 (tools image, bridge network ``web``); each store's contents
    without nginx, the baseline a cold trial returns to."""
    pull(topo, "h1", TOOLS)
    ferry(topo, "h1", "network", "create", NET)
    ferry(topo, "h1", "run", "-d", "--network", NET, "--name", CLIENT, TOOLS, "sleep", "7200")
    return {h.name: store_contents(topo, h.name) for h in topo.hosts}


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("benchmarks/images.py needs root (it builds a lab)")
    began = time.perf_counter()
    figures: dict[str, Any] = opening_figures(NAME) | {"trials": TRIALS, "image": IMAGE}
    sampler = LoadSampler()
    sampler.start()
    try:
        with image_lab() as topo:
            baselines = prepare(topo)
            progress(began, "lab up, client ready")
            figures |= measure_pulls(topo, baselines)
            progress(began, "pulls and the floor done")
            figures |= measure_runs(topo, baselines["h1"])
            progress(began, "run cold/warm done")
            figures |= measure_service(topo, baselines)
            progress(began, "service done")
    except Exception as exc:
        figures["error"] = f"{type(exc).__name__}: {exc}"  # what was measured is kept
        raise
    finally:
        sampler.done.set()
        sampler.join()
        figures["loadavg_during"] = sampler.samples
        figures["loadavg_during_max"] = max(sampler.samples)
        close_figures(figures, [], began, NAME)
        write("images", figures)


if __name__ == "__main__":
    main()
