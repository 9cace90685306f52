"""Driving labs from tests: unique names and subnets, clean-up that runs on failure too."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ferry.errors import Unavailable
from ferry.lab import lab as labmod
from ferry.lab import records, seeded
from ferry.lab.topology import LabTopology
from ferry.model.node import SESSION_TTL_S

T = TypeVar("T")
FERRY = str(Path(sys.executable).parent / "ferry")
_counter = itertools.count()
# The image tests run: a Debian root filesystem with python3, curl, iproute2, ping, ps and
# getent, built once by scripts/tools-image.sh (make test runs it) and imported into each host.
TOOLS = "tools"
# a node whose ferryd died is Down once its session lease lapsed (SESSION_TTL_S after its last
# heartbeat); the rest is etcd's lease check and a loaded machine
DOWN_WITHIN_S = SESSION_TTL_S + 10
TOOLS_TAR = Path(os.environ.get("FERRY_TOOLS_IMAGE", "/var/cache/ferry/tools.tar"))
CREATE_LOCK = Path("/run/ferry/tests-lab-create.lock")


def _worker_seconds() -> range:
    """Second octets this test process picks lab subnets from: each pytest-xdist worker has a
    range of its own, so a subnet one worker just freed (its lab down, and checked gone) is
    never another worker's new lab meanwhile."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not worker[2:].isdigit():
        return range(150, 250)
    start = 150 + (int(worker[2:]) % 4) * 25
    return range(start, start + 25)


def _free_subnet() -> str:
    used = [ipaddress.ip_network(records.load(n).subnet) for n in records.list_labs()]
    for second in _worker_seconds():
        candidate = ipaddress.ip_network(f"10.{second}.0.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise RuntimeError("no free lab subnet")


QUIET_S = 0.3
QUIET_MAX_S = 5.0


def wait_until(
    check: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.1
) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def wait_for_value(
    read: Callable[[], T], want: T, timeout_s: float, what: str, every_s: float = 0.1
) -> T:
    """Wait until ``read()`` returns ``want``; on a timeout the message shows what it last
    returned (``wait_until`` over a comparison could only say ``False``)."""
    last: list[T] = []

    def matches() -> bool:
        last[:] = [read()]
        return last[0] == want

    try:
        wait_until(matches, timeout_s, what, every_s)
    except AssertionError:
        seen = repr(last[0]) if last else "nothing"
        raise AssertionError(
            f"timed out after {timeout_s}s waiting for {what}: wanted {want!r}, last read {seen}"
        ) from None
    return want


class LabRig:
    def __init__(self, topo: LabTopology) -> None:
        self.topo = topo
        self.name = topo.name

    def socket(self, host: str) -> str:
        return f"unix://{self.topo.node(host).socket}"

    def ferry(self, host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ferry CLI against a host's ferryd (its socket is a file, not a lab address)."""
        env = dict(os.environ, FERRY_HOST=self.socket(host))
        result = subprocess.run(
            [FERRY, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ferry {' '.join(args)} on {host} failed: {result.stderr}")
        return result

    def exec(
        self, host: str, *cmd: str, check: bool = True, timeout_s: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a lab host or client (ferry lab exec)."""
        result = subprocess.run(
            [FERRY, "lab", "exec", "--name", self.name, host, "--", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} on {host} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def api(self, host: str, path: str, **query: Any) -> Any:
        from ferry.api.client import ApiClient

        return ApiClient(self.socket(host), timeout_s=30).get(path, **query)

    def form_swarm(self, managers: tuple[str, ...] = ()) -> None:
        """h1 inits; every other host joins, as a manager if named in ``managers``."""
        h1 = self.topo.node("h1")
        self.ferry("h1", "swarm", "init", "--advertise-addr", h1.addr)
        tokens = {
            role: self.ferry("h1", "swarm", "join-token", "-q", role).stdout.strip()
            for role in ("worker", "manager")
        }
        for host in self.topo.hosts[1:]:
            token = tokens["manager" if host.name in managers else "worker"]
            self.exec(host.name, "ferry", "swarm", "join", "--token", token, f"{h1.addr}:2377")
        # a joined node is Ready from its first heartbeat, which a loaded machine may delay:
        # tests start from a swarm whose every node is Ready
        wait_until(self._all_ready, 30, "every node of the new swarm Ready")

    def _all_ready(self) -> bool:
        try:
            return {n["Status"]["State"] for n in self.nodes().values()} == {"ready"}
        except Unavailable:  # "no leader" a moment while a manager's etcd member joins
            return False

    def nodes(self, host: str = "h1") -> dict[str, dict[str, Any]]:
        return {n["Description"]["Hostname"]: n for n in self.api(host, "/nodes")}

    def rejoin(self, host: str) -> None:
        """Join ``host`` again (after a test made it leave) and drop its old, Down entry."""
        manager = self.topo.node("h1").addr
        old_id = self.api(host, "/info")["Swarm"].get("NodeID", "")
        if old_id:
            self.ferry(host, "swarm", "leave", "--force")
        token = self.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        self.ferry(host, "swarm", "join", "--token", token, f"{manager}:2377")
        stale = [
            n["ID"]
            for n in self.api("h1", "/nodes")
            if n["Description"]["Hostname"] == host and n["Status"]["State"] == "down"
        ]
        for node_id in stale:
            self.ferry("h1", "node", "rm", node_id)

    def import_tools(self) -> None:
        """The ``tools`` image on every host of the lab (imported side by side)."""
        if not TOOLS_TAR.exists():
            raise AssertionError(f"{TOOLS_TAR} is missing: run scripts/tools-image.sh (make test)")
        with ThreadPoolExecutor() as pool:
            done = pool.map(
                lambda host: self.ferry(host, "image", "import", str(TOOLS_TAR), TOOLS),
                [h.name for h in self.topo.hosts],
            )
            list(done)

    def node_state(self, hostname: str, via: str = "h1") -> str:
        """``hostname``'s state as ``via`` lists it; "" while the swarm has no leader (an
        election after a manager died: Docker's answer then too), so that a wait for a state
        counts that moment as "not yet" instead of failing on it."""
        try:
            nodes = self.nodes(via)
        except Unavailable as exc:
            if NO_LEADER in str(exc):
                return ""
            raise
        return str(nodes[hostname]["Status"]["State"])


NO_LEADER = "The swarm does not have a leader"


def tools_seed() -> Path:
    """The image store holding ``tools`` that every lab host starts with (``lab.seeded``:
    imported once per machine, hard-linked into each host's store)."""
    if not TOOLS_TAR.exists():
        raise AssertionError(f"{TOOLS_TAR} is missing: run scripts/tools-image.sh (make test)")
    return seeded.seed_store(TOOLS_TAR, TOOLS)


@contextlib.contextmanager
def _creating_labs() -> Iterator[None]:
    """One test process at a time picks a lab's name and subnet and records the lab: the
    suite runs modules in parallel workers (pytest-xdist), and two workers must never pick the
    same free subnet or name before either has recorded its lab."""
    CREATE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with CREATE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _free_name() -> str:
    taken = set(records.list_labs())
    for _ in range(1000):
        name = f"it{os.getpid() % 10000}{next(_counter)}"[:8]
        if name not in taken and not (labmod.LAB_ROOT / name).exists():
            return name
    raise RuntimeError("no free lab name")


@contextlib.contextmanager
def new_lab(hosts: int = 3, clients: int = 0, tools: bool = True) -> Iterator[LabRig]:
    """A lab of its own (unique name and subnet) with the ``tools`` image on every host
    (``tools=False``: none; ``LabRig.import_tools`` imports it through each ferryd), taken
    down whatever happens."""
    seed = tools_seed() if tools else None
    with _creating_labs():
        name = _free_name()
        topo = labmod.up(name, hosts, clients, _free_subnet(), images=seed)
    try:
        yield LabRig(topo)
    finally:
        _save_logs(topo)
        labmod.down(name)


def _save_logs(topo: LabTopology) -> None:
    """With FERRY_SAVE_LAB_LOGS=DIR, each host's ferryd log is kept (DIR/<lab>/<host>.log)
    before the lab goes: what to read after a failure."""
    target = os.environ.get("FERRY_SAVE_LAB_LOGS")
    if not target:
        return
    keep = Path(target) / topo.name
    keep.mkdir(parents=True, exist_ok=True)
    for host in topo.hosts:
        for log, name in (
            (host.run_dir / "ferryd.log", f"{host.name}.log"),
            (host.state_dir / "etcd" / "etcd.log", f"{host.name}-etcd.log"),
        ):
            if log.exists():
                shutil.copyfile(log, keep / name)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def sandbox_netns(lab: LabRig, host: str, net_id: str) -> str:
    return f"/run/netns/{lab.name}-{host}-ov-{net_id[:12]}"


def sandbox_entries(lab: LabRig, host: str, net_id: str) -> tuple[str, str]:
    """(FDB entries, neighbour entries) of vxlan0 in a host's sandbox for a network."""
    netns = sandbox_netns(lab, host, net_id)
    if not Path(netns).exists():
        return "", ""
    fdb = subprocess.run(
        ["nsenter", f"--net={netns}", "bridge", "fdb", "show", "dev", "vxlan0"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    neigh = subprocess.run(
        ["nsenter", f"--net={netns}", "ip", "neigh", "show", "dev", "vxlan0"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return fdb, neigh


def tasks(lab: LabRig, service: str, host: str = "h1") -> list[dict[str, Any]]:
    """The tasks of ``service``, as manager ``host`` lists them."""
    return list(lab.api(host, "/tasks", filters={"service": [service]}))


def running(lab: LabRig, service: str, host: str = "h1") -> list[dict[str, Any]]:
    return [
        t
        for t in tasks(lab, service, host)
        if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
    ]


def doctor_findings(lab: LabRig, host: str = "h1") -> list[dict[str, Any]]:
    """``ferry doctor --all`` on ``host``: every difference between store and kernel."""
    result = lab.ferry(host, "doctor", "--all", "--format", "json", check=False)
    if result.returncode not in (0, 1):
        raise AssertionError(f"ferry doctor failed ({result.returncode}): {result.stderr}")
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def wait_doctor_clean(
    lab: LabRig, timeout_s: float, host: str = "h1", *, down: tuple[str, ...] = ()
) -> None:
    """Until ``ferry doctor --all`` finds nothing (the oracle of every fault test), but that
    the hosts in ``down`` are down and so not examined."""
    last: list[list[dict[str, Any]]] = [[]]
    expected = [
        {"Node": h, "Check": "node", "Subject": h, "Item": "state", "Expected": "ready",
         "Actual": "down: not examined"}
        for h in down
    ]  # fmt: skip

    def clean() -> bool:
        last[0] = doctor_findings(lab, host)
        return last[0] == expected

    try:
        wait_until(clean, timeout_s, "ferry doctor --all to be clean", every_s=0.5)
    except AssertionError as exc:
        rows = "\n".join(
            " | ".join(f[k] for k in ("Node", "Check", "Subject", "Item", "Expected", "Actual"))
            for f in last[0]
        )
        logs = ""
        for named in sorted({f["Node"] for f in last[0]} & {h.name for h in lab.topo.hosts}):
            path = lab.topo.node(named).run_dir / "ferryd.log"
            tail = path.read_text(errors="replace").splitlines()[-25:] if path.exists() else []
            logs += f"\n--- {named} ferryd.log (last lines)\n" + "\n".join(tail)
        raise AssertionError(f"{exc}\n{rows}{logs}") from None


def etcd_pid(lab: LabRig, host: str) -> int:
    record = read_json(lab.topo.node(host).state_dir / "etcd" / "etcd.pid")
    return int(record["pid"])


def task_ids(lab: LabRig, service: str, host: str = "h1") -> dict[str, str]:
    """Running tasks of ``service`` (as manager ``host`` lists them): task id → node id."""
    return {t["ID"]: t["NodeID"] for t in running(lab, service, host)}


# Ferry as it was before the store CA and the sealed CA key (issue 9): swarms it formed are
# what an upgrade must carry over. A commit of main's history, which is never rewritten.
OLDER_FERRY_COMMIT = "b75f446785a13a9cc293b196da2f58262c8e89f0"
PROBES = Path(__file__).resolve().parent / "probes"


@contextlib.contextmanager
def older_ferry(commit: str = OLDER_FERRY_COMMIT) -> Iterator[Path]:
    """A directory holding the ``ferry`` package of ``commit`` (``git archive``)."""
    repo = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="ferry-older-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", commit, "ferry"],
            capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True, timeout=60)
        yield Path(tmp)


def restart_ferryd(lab: LabRig, host: str, code: Path | None = None) -> None:
    """Stop a host's ferryd (its etcd member and containers keep running) and start it again,
    from ``code`` if given."""
    labmod.stop_ferryd(lab.topo, host)
    labmod.start_ferryd(lab.topo, host, code=code)


def probe(lab: LabRig, host: str, script: str, *args: str) -> list[Any]:
    """Run one of ``probes/`` inside a lab host; its JSON lines."""
    out = lab.exec(host, sys.executable, str(PROBES / script), *args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@contextlib.contextmanager
def underlay_capture(lab: LabRig, expression: str, max_packets: int = 300) -> Iterator[list[str]]:
    """tcpdump on the lab's underlay bridge while the block runs; the list it yields holds one
    line per packet seen (its timestamp first). It starts only once tcpdump says it listens,
    and ends once the block has ended and tcpdump has printed nothing new for QUIET_S: a fixed
    window (8 s) lost the traffic of a slow ``ferry exec`` on a loaded machine. Bounded:
    max_packets, and 60 s."""
    lines: list[str] = []
    capture = subprocess.Popen(
        ["timeout", "60", "nsenter", f"--net=/run/netns/{lab.name}-ul", "tcpdump", "-i", "ul0",
         "-nn", "-l", "-c", str(max_packets), expression],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert capture.stdout is not None and capture.stderr is not None
    stdout = capture.stdout

    def read() -> None:
        for line in stdout:
            if re.match(r"^\d\d:\d\d:", line):
                lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for line in capture.stderr:
            if "listening on" in line:
                break
        yield lines
        # what crossed last is printed once tcpdump (-l: line by line) falls quiet; traffic
        # that never stops ends the wait at QUIET_MAX_S, with what it printed by then
        deadline = time.monotonic() + QUIET_MAX_S
        count = -1
        while count != len(lines) and time.monotonic() < deadline:
            count = len(lines)
            threading.Event().wait(QUIET_S)
    finally:
        capture.terminate()  # timeout passes it on to tcpdump
        capture.wait(timeout=15)  # its output is the reader's to take
        reader.join(timeout=5)
        capture.stdout.close()
        capture.stderr.close()
