"""A lab driven through the CLI of any Ferry checkout, for figures that compare two checkouts.

The lab is made, changed and removed by ``<root>/.venv/bin/ferry`` (``lab up/stop/start/exec/
down``), so its ferryds run that checkout's code. State is read over the hosts' API sockets
(files under /run/ferry/lab; the Docker Engine API that every checkout serves) with this
checkout's stdlib-only client, and commands inside the lab go through ``ferry lab exec``:
nothing here talks to a lab address from the root namespace.

Be aware: a lab's names and paths (``ferry.lab.topology``) are read with this checkout's code;
they are the same in every checkout measured so far. Labs get names ``b8<pid><n>`` and a free
underlay among 10.60-10.89.0.0/24, and are removed in a ``finally``; a ``lab down`` that leaves a
namespace behind (issue 8, input 8) is repeated, and what it left is counted in ``LEFTOVERS``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ferry.api.client import ApiClient
from ferry.errors import FerryError
from ferry.kernel import nsfs
from ferry.lab import lab as labmod
from ferry.lab import records
from ferry.lab.topology import LabTopology

SUBNET_SECONDS = range(60, 90)  # 10.<n>.0.0/24: outside the tests' 150-249 and the benches' 9x
LEFTOVERS: list[str] = []  # namespaces a first `lab down` left behind, over the whole run
_seq = itertools.count()


class Lab:
    """One lab of ``root``'s code: the ferry CLI against its hosts, its API, its processes."""

    def __init__(self, root: Path, topo: LabTopology) -> None:
        self.root = root
        self.topo = topo
        self.name = topo.name
        self.ferry_bin = str(root / ".venv" / "bin" / "ferry")
        # the image tasks run: the checkout's built-in "host" image where it has one (before
        # the runtime moved to runc), else the tools image, imported into every host
        self.image = "host" if _has_host_image(root) else "tools"

    # --- commands -----------------------------------------------------------------------
    def cli(
        self, host: str, *args: str, check: bool = True, timeout_s: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``ferry ARGS`` against ``host``'s ferryd (its socket is a file, not a lab address)."""
        env = clean_env(FERRY_HOST=f"unix://{self.topo.node(host).socket}")
        return _run([self.ferry_bin, *args], self.root, timeout_s, check, env)

    def lab(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        """``ferry lab VERB --name LAB ARGS`` (stop, start)."""
        verb, *rest = args
        argv = [self.ferry_bin, "lab", verb, "--name", self.name, *rest]
        result = _run(argv, self.root, timeout_s, True)
        if verb == "start":
            self.check_code()
        return result

    def exec_argv(self, node: str, *cmd: str) -> list[str]:
        return [self.ferry_bin, "lab", "exec", "--name", self.name, node, "--", *cmd]

    def exec(
        self, node: str, *cmd: str, check: bool = True, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``cmd`` inside a lab host or client, through ``ferry lab exec``."""
        return _run(self.exec_argv(node, *cmd), self.root, timeout_s, check)

    def check_code(self) -> None:
        """Raise unless every ferryd of the lab runs ``root``'s code: its Python is root's and
        it runs in ``root`` (``-m ferry.daemon`` imports from there) with no PYTHONPATH."""
        for host in self.topo.hosts:
            pid = labmod.ferryd_pid(host)
            if pid is None:
                raise RuntimeError(f"lab {self.name}: no ferryd on {host.name}")
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if (
                cwd != self.root
                or not exe.startswith(str(self.root / ".venv"))
                or any(e.startswith(b"PYTHONPATH=") for e in environ)
            ):
                raise RuntimeError(f"lab {self.name}: ferryd on {host.name} runs {exe} in {cwd}")

    def form_swarm(self) -> None:
        """h1 initialises the swarm, h2.. join as workers, all inside their hosts."""
        h1 = self.topo.node("h1").addr
        self.exec("h1", "ferry", "swarm", "init", "--advertise-addr", h1)
        token = self.exec("h1", "ferry", "swarm", "join-token", "-q", "worker").stdout.strip()
        for host in self.topo.hosts[1:]:
            self.exec(host.name, "ferry", "swarm", "join", "--token", token, f"{h1}:2377")
        want = {h.name for h in self.topo.hosts}
        if wait_for(lambda: self.ready_hosts() == want, 30) is None:
            raise RuntimeError(f"lab {self.name}: not every node ready after joining")

    # --- reading state ------------------------------------------------------------------
    def get(self, path: str, host: str = "h1", **query: Any) -> Any:
        """A GET on ``host``'s API; None while it does not answer (a ferryd being restarted)."""
        try:
            return ApiClient(f"unix://{self.topo.node(host).socket}", timeout_s=10).get(
                path, **query
            )
        except (FerryError, OSError):
            return None

    def tasks(self, service: str) -> list[dict[str, Any]]:
        found = self.get("/tasks", filters={"service": [service]})
        return list(found) if found is not None else []

    def running(self, service: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks(service) if is_running(t)]

    def node_states(self) -> dict[str, str]:
        """hostname -> state as h1 tells it (empty while h1 does not answer)."""
        nodes = self.get("/nodes") or []
        return {n["Description"]["Hostname"]: n["Status"]["State"] for n in nodes}

    def node_ids(self) -> dict[str, str]:
        return {n["Description"]["Hostname"]: n["ID"] for n in self.get("/nodes") or []}

    def ready_hosts(self) -> set[str]:
        return {h for h, state in self.node_states().items() if state == "ready"}

    def log_path(self, host: str) -> Path:
        return self.topo.node(host).run_dir / "ferryd.log"

    def etcd_pid(self, host: str = "h1") -> int | None:
        """The etcd member of ``host``, if it lives (its pid file is JSON: {"pid": N, …})."""
        try:
            pid = int(
                json.loads((self.topo.node(host).state_dir / "etcd" / "etcd.pid").read_text())[
                    "pid"
                ]
            )
        except (OSError, ValueError, KeyError):
            return None
        return pid if nsfs.in_netns(pid, nsfs.netns_path(self.topo.node(host).netns)) else None

    def container_pids(self, host: str) -> list[int]:
        """Every process in ``host``'s container namespaces (``<lab>-<host>-c-*``)."""
        prefix = f"{self.topo.node(host).netns_prefix}c-"
        return [
            p for ns in nsfs.list_netns(prefix) for p in nsfs.pids_in_netns(nsfs.netns_path(ns))
        ]


def is_running(task: dict[str, Any]) -> bool:
    return bool(task["DesiredState"] == "running" and task["Status"]["State"] == "running")


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without what would make ``root``'s Python import another checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, **extra}


def _run(
    argv: list[str],
    root: Path,
    timeout_s: float,
    check: bool,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``argv`` run from ``root``: a ferryd it starts runs ``python -m ferry.daemon`` in that
    directory, which imports the ``ferry`` found there first."""
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=env or clean_env(),
        cwd=root,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:8])} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-600:]}"
        )
    return result


def wait_for(
    check: Callable[[], object],
    timeout_s: float,
    every_s: float = 0.2,
    since: float | None = None,
) -> float | None:
    """Seconds from ``since`` (a ``time.monotonic()``; by default now) until ``check()`` is
    truthy, polled every ``every_s``; None when it is not within ``timeout_s`` of ``since``."""
    start = time.monotonic() if since is None else since
    while True:
        if check():
            return round(time.monotonic() - start, 2)
        if time.monotonic() - start >= timeout_s:
            return None
        time.sleep(every_s)


# --- labs ---------------------------------------------------------------------------------
def _taken_subnets() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    taken = []
    for name in records.list_labs():
        with contextlib.suppress(FerryError, OSError, KeyError):
            taken.append(ipaddress.ip_network(records.load(name).subnet))
    return taken


def _new_name() -> str:
    while True:
        name = f"b8{os.getpid() % 10000:04d}{next(_seq) % 100:02d}"
        if name not in records.list_labs() and not nsfs.list_netns(f"{name}-"):
            return name


def _lab_up(root: Path, name: str, clients: int) -> None:
    """``ferry lab up``, on the first free underlay (another lab may take one meanwhile)."""
    error = ""
    for second in SUBNET_SECONDS:
        subnet = ipaddress.ip_network(f"10.{second}.0.0/24")
        if any(subnet.overlaps(t) for t in _taken_subnets()):
            continue
        argv = [str(root / ".venv" / "bin" / "ferry"), "lab", "up", "--name", name,
                "--hosts", "3", "--clients", str(clients), "--subnet", str(subnet)]  # fmt: skip
        result = _run(argv, root, 120, False)
        if result.returncode == 0:
            return
        error = (result.stderr or result.stdout).strip()
        if "overlaps" not in error:
            break
    raise RuntimeError(f"lab up {name} failed: {error[-600:]}")


def _lab_down(root: Path, name: str) -> None:
    """``ferry lab down``, repeated while it leaves a namespace of the lab behind."""
    for _ in range(3):
        _run(
            [str(root / ".venv" / "bin" / "ferry"), "lab", "down", "--name", name], root, 120, False
        )
        left = nsfs.list_netns(f"{name}-")
        if not left:
            return
        LEFTOVERS.extend(left)
    raise RuntimeError(f"lab {name}: namespaces left after 3 lab downs: {left}")


TOOLS_TAR = Path(os.environ.get("FERRY_TOOLS_IMAGE", "/var/cache/ferry/tools.tar"))


def _has_host_image(root: Path) -> bool:
    return "HOST_IMAGE" in (root / "ferry" / "runtime" / "images.py").read_text()


@contextlib.contextmanager
def fresh_lab(root: Path, clients: int = 0) -> Iterator[Lab]:
    """A new 3-host lab of ``root``'s code with its swarm formed; removed also on failure."""
    name = _new_name()
    try:
        _lab_up(root, name, clients)
        lab = Lab(root, records.load(name))
        lab.check_code()
        if lab.image == "tools":
            for host in lab.topo.hosts:
                lab.cli(host.name, "image", "import", str(TOOLS_TAR), "tools", timeout_s=600)
        lab.form_swarm()
        yield lab
    finally:
        _lab_down(root, name)


# --- processes that report lines ----------------------------------------------------------
class LineWatch:
    """A bounded process that prints ``ready`` and then ``<epoch s> <payload>`` lines; each line
    is kept with its time (the same wall clock as ours). It ends when ``close`` makes its stop
    file, or at its own deadline."""

    def __init__(
        self, argv_for: Callable[[str], list[str]], root: Path, env: dict[str, str]
    ) -> None:
        fd, stop = tempfile.mkstemp(prefix="b8-watch-")
        os.close(fd)
        os.unlink(stop)
        self._stop = Path(stop)
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._proc = subprocess.Popen(
            argv_for(stop),
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(30):
            self.close()
            raise RuntimeError(f"watcher {argv_for(stop)[:6]} did not start")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            head, _, payload = line.strip().partition(" ")
            if head == "ready":
                self._ready.set()
            elif head:
                with self._lock:
                    self.lines.append((float(head), payload))

    def snapshot(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.lines)

    def close(self) -> None:
        self._stop.touch()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._stop.unlink(missing_ok=True)


# Runs in a lab client: a new connection every 50 ms to $1, at most $3 s or until $2 exists;
# one line per attempt: its end time and curl's exit status (0 answered, 7 refused, 28 timeout).
HAMMER = (
    'echo ready; end=$((SECONDS+$3)); while [ $SECONDS -lt $end ] && [ ! -e "$2" ]; do '
    'curl -s -o /dev/null -m 1 "$1"; rc=$?; echo "$(date +%s.%N) $rc"; sleep 0.05; done'
)

# Runs in a container: getaddrinfo($1) every 20 ms; a line at each change of the answer.
RESOLVE = r"""
import os, socket, sys, time
name, stop, until = sys.argv[1], sys.argv[2], time.time() + float(sys.argv[3])
print("ready", flush=True)
last = None
while time.time() < until and not os.path.exists(stop):
    try:
        ips = sorted({i[4][0] for i in socket.getaddrinfo(name, None, socket.AF_INET)})
    except socket.gaierror:
        ips = []
    if ips != last:
        print(time.time(), ",".join(ips) or "-", flush=True)
        last = ips
    time.sleep(0.02)
"""


def hammer(lab: Lab, client: str, url: str, limit_s: int) -> LineWatch:
    return LineWatch(
        lambda stop: lab.exec_argv(client, "bash", "-c", HAMMER, "hammer", url, stop, str(limit_s)),
        lab.root,
        clean_env(),
    )


def resolver(lab: Lab, host: str, container: str, name: str, limit_s: int) -> LineWatch:
    env = clean_env(FERRY_HOST=f"unix://{lab.topo.node(host).socket}")
    script = ("/usr/bin/python3", "-u", "-c", RESOLVE)
    return LineWatch(
        lambda stop: [lab.ferry_bin, "exec", container, *script, name, stop, str(limit_s)],
        lab.root,
        env,
    )
