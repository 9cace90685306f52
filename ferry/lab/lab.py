"""Bring a lab up, list it, run commands in it, and take it down again — also after a crash.

What ``up`` makes, in order (``down`` removes the same by name prefix, whatever state it is in):
an underlay namespace ``<lab>-ul`` holding bridge ``ul0``; per host, client and the registry a
namespace ``<lab>-<node>`` whose ``eth0`` is a veth to ``ul0``; a blackhole route for the
underlay subnet in the root namespace, so a stray packet to a lab address dies here instead of
leaving through the machine's uplink; the lab's registry (:mod:`ferry.lab.registry`, its
storage an overlay mount under the lab's directory); and one ``ferryd`` per host, started
as on a real host, by its daemon.json (its state directory, its socket, the registry as Docker
Hub's mirror). Nothing is routed or NATed out: the lab has
no default route and no link to the real network.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ferry.api.client import ApiClient
from ferry.daemon.config import DaemonConfig
from ferry.errors import Conflict, FerryError, Unavailable
from ferry.kernel import cgroups, mounts, nsfs, proc
from ferry.kernel.netlink import Netlink
from ferry.kernel.wireguard import SOCKET_DIR
from ferry.lab import images as lab_images
from ferry.lab import registry, seeded
from ferry.lab.records import exec_path, list_labs, load, record_path
from ferry.lab.topology import LAB_ROOT, LabNode, LabTopology, plan_topology, validate_name
from ferry.network.encryption import tunnel_ifname

UNDERLAY_BRIDGE = "ul0"
FERRYD_START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class NodeStatus:
    node: LabNode
    ferryd_pid: int | None
    ferryd_state: str


def _check_free(topo: LabTopology) -> None:
    if topo.lab_dir.exists() or nsfs.list_netns(f"{topo.name}-"):
        raise Conflict(
            f"lab {topo.name!r} already exists: use it, or remove it with "
            f"'ferry lab down --name {topo.name}'"
        )
    net = ipaddress.ip_network(topo.subnet)
    for other in list_labs():
        other_net = ipaddress.ip_network(load(other).subnet)
        if net.overlaps(other_net):
            raise Conflict(
                f"subnet {topo.subnet} overlaps lab {other!r} ({other_net}): pick another --subnet"
            )
    with Netlink() as root:
        for dst, _gw, _kind in root.routes():
            if dst != "0.0.0.0/0" and net.overlaps(ipaddress.ip_network(dst)):
                raise Conflict(
                    f"subnet {topo.subnet} overlaps this machine's route to {dst}: "
                    "pick another --subnet"
                )


def up(
    name: str, hosts: int, clients: int, subnet: str, *, images: Path | None = None
) -> LabTopology:
    """Make lab ``name`` and start its ferryds; ``images``: an image store every host starts
    with (``seeded.seed_store``), linked in before its ferryd starts."""
    topo = plan_topology(name, hosts, clients, subnet)
    _check_free(topo)
    topo.lab_dir.mkdir(parents=True, mode=0o700)
    record = {"hosts": hosts, "clients": clients, "subnet": topo.subnet, "created": time.time()}
    record_path(name).write_text(json.dumps(record))
    try:
        _build_underlay(topo)
        for host in topo.hosts:
            write_daemon_json(topo, host)
        registry.start_registry(topo, lab_images.current_store())
        if images is not None:
            for host in topo.hosts:
                seeded.link_store(images, DaemonConfig(state_dir=host.state_dir).images_dir)
        started = [(host, _start_ferryd(host)) for host in topo.hosts]
        for host, ref in started:
            _wait_ferryd(host, *ref)
    except FerryError:
        down(name)
        raise
    return topo


def _build_underlay(topo: LabTopology) -> None:
    ul_path = nsfs.create_netns(topo.underlay_netns)
    with Netlink(ul_path) as ul:
        ul.set_link("lo", up=True)
        ul.add_bridge(UNDERLAY_BRIDGE)
        ul.set_link(UNDERLAY_BRIDGE, up=True)
        for node in topo.nodes:
            node_path = nsfs.create_netns(node.netns)
            ul.add_veth(node.name, "eth0", node_path)
            ul.set_link(node.name, master=UNDERLAY_BRIDGE, up=True)
            with Netlink(node_path) as nl:
                nl.set_link("lo", up=True)
                nl.add_address("eth0", f"{node.addr}/{node.prefixlen}")
                nl.set_link("eth0", up=True)
    with Netlink() as root:
        root.add_blackhole(topo.subnet)


def daemon_json_path(host: LabNode) -> Path:
    return host.run_dir / "daemon.json"


def daemon_json(topo: LabTopology, host: LabNode) -> dict[str, object]:
    """A host's daemon.json: its state directory and socket, the lab's registry as Docker
    Hub's mirror. The settings a real host's ``/etc/ferry/daemon.json`` holds, so the lab
    runs ferryd the way a real host does (``--config-file``)."""
    return {
        "data-root": str(host.state_dir),
        "hosts": [f"unix://{host.socket}"],
        **registry.daemon_config(topo.registry_address),
    }


def write_daemon_json(topo: LabTopology, host: LabNode) -> None:
    """Write a host's daemon.json (before its ferryd starts)."""
    host.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = json.dumps(daemon_json(topo, host), indent=2) + "\n"
    daemon_json_path(host).write_text(doc)


def ferryd_argv(host: LabNode, code: Path | None) -> list[str]:
    argv = [sys.executable, "-m", "ferry.daemon", "--hostname", host.name]
    argv += ["--run-dir", str(host.run_dir), "--netns-prefix", host.netns_prefix]
    if _takes_config_file(code):
        return [*argv, "--config-file", str(daemon_json_path(host))]
    return [*argv, "--state-dir", str(host.state_dir)]  # and no registry: it knows none


def _takes_config_file(code: Path | None) -> bool:
    """Whether the ferryd of ``code`` (None: this source tree's) takes ``--config-file``: an
    older tree's, started for a test of upgrades (``lab start --code``), may not."""
    if code is None:
        return True
    main = code / "ferry" / "daemon" / "main.py"
    return main.exists() and '"--config-file"' in main.read_text()


def _start_ferryd(host: LabNode, code: Path | None = None) -> tuple[proc.ProcRef, int]:
    """Spawn ``host``'s ferryd; its process and the size its log had before it started."""
    host.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = host.run_dir / "ferryd.log"
    log_from = log_path.stat().st_size if log_path.exists() else 0
    env = {"PATH": exec_path(), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
    if code is not None:  # `python -m` puts the working directory first on the path
        env["PYTHONPATH"] = str(code)
    ref = proc.spawn(
        ferryd_argv(host, code),
        env=env,
        log_path=log_path,
        cwd=code,
        netns=nsfs.netns_path(host.netns),
    )
    return ref, log_from


def _wait_ferryd(host: LabNode, ref: proc.ProcRef, log_from: int = 0) -> None:
    """Until ``host``'s ferryd answers; Unavailable with the last lines it logged since byte
    ``log_from`` if it exits or does not answer in time."""
    deadline = time.monotonic() + FERRYD_START_TIMEOUT_S
    client = ApiClient(f"unix://{host.socket}", timeout_s=2.0)
    while time.monotonic() < deadline and ref.alive():
        if host.socket.exists():
            try:
                client.ping()
                return
            except Unavailable:
                pass
        time.sleep(0.05)
    log = host.run_dir / "ferryd.log"
    # this start's lines only: every start of the host appends to the one log
    text = log.read_bytes()[log_from:].decode(errors="replace") if log.exists() else ""
    tail = text.strip().splitlines()[-3:]
    raise Unavailable(f"ferryd on {host.name} did not start: {' | '.join(tail) or 'no log'}")


def _recorded_ferryd(pid_file: Path, netns: str) -> int | None:
    """The pid a pid file names, if that process still lives in the host's namespace: after a
    reboot or a crash the number may belong to some unrelated process, never to be signalled."""
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if nsfs.in_netns(pid, nsfs.netns_path(netns)) else None


def ferryd_pid(host: LabNode) -> int | None:
    return _recorded_ferryd(host.run_dir / "ferryd.pid", host.netns)


def status(topo: LabTopology) -> list[NodeStatus]:
    out = []
    for node in topo.nodes:
        if node.name == topo.registry.name:
            pid = registry.registry_pid(topo)
            out.append(NodeStatus(node, pid, "registry" if pid else "registry stopped"))
            continue
        if not node.runs_ferryd:
            out.append(NodeStatus(node, None, "client"))
            continue
        pid = ferryd_pid(node)
        out.append(NodeStatus(node, pid, "running" if pid else "stopped"))
    return out


def stop_ferryd(topo: LabTopology, host_name: str, *, kill: bool = False) -> None:
    host = topo.node(host_name)
    pid = ferryd_pid(host)
    if pid is None:
        return
    proc.kill_pids([pid], signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + 15.0
    while proc.start_time_of(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    if kill:
        (host.run_dir / "ferryd.pid").unlink(missing_ok=True)


def start_node(topo: LabTopology, node_name: str) -> str:
    """``ferry lab start NODE``: a host's ferryd, or the lab's registry; what was started.
    Raises Conflict when it runs already or the node is a client."""
    if node_name == topo.registry.name:
        if registry.registry_pid(topo) is not None:
            raise Conflict("the lab's registry is already running")
        registry.start_registry(topo, lab_images.current_store())
        return "the lab's registry"
    start_ferryd(topo, node_name)
    return f"ferryd on {node_name}"


def stop_node(topo: LabTopology, node_name: str, *, kill: bool = False) -> str:
    """``ferry lab stop NODE``: a host's ferryd or the lab's registry; what was stopped."""
    if node_name == topo.registry.name:
        registry.stop_registry(topo, kill=kill)
        return "the lab's registry"
    stop_ferryd(topo, node_name, kill=kill)
    return f"ferryd on {node_name}"


def start_ferryd(topo: LabTopology, host_name: str, *, code: Path | None = None) -> None:
    """Start a host's ferryd again; ``code``: from another source tree holding a ``ferry``
    package (an older version, for tests of upgrades) instead of this one."""
    host = topo.node(host_name)
    if not host.runs_ferryd:
        raise Conflict(f"{host_name} is a lab client: it runs no ferryd")
    if ferryd_pid(host) is not None:
        raise Conflict(f"ferryd on {host_name} is already running")
    if not daemon_json_path(host).exists():  # a lab made before hosts had a daemon.json
        write_daemon_json(topo, host)
    _wait_ferryd(host, *_start_ferryd(host, code))


def down(name: str) -> list[str]:
    """Remove everything lab ``name`` made; safe to repeat. Returns what was removed."""
    validate_name(name)
    removed: list[str] = []
    prefix = f"{name}-"
    # ferryds first, and gone before anything is listed: a running ferryd makes namespaces
    # (sandboxes, containers) and restarts children, so a list taken while one lives can miss
    # what it makes next. Then everything else living in the lab's namespaces (etcd, container
    # monitors and processes), then the namespaces; listed again until none is left.
    _kill_ferryds(name)
    for _ in range(5):
        namespaces = nsfs.list_netns(prefix)
        if not namespaces:
            break
        _kill_in(namespaces)
        for ns in namespaces:
            _remove_netns(ns)
            removed.append(f"netns {ns}")
            # a killed wireguard-go leaves its control socket behind (it is not per namespace)
            wg_socket = SOCKET_DIR / f"{tunnel_ifname(f'{ns}-')}.sock"
            if wg_socket.exists():
                wg_socket.unlink()
                removed.append(f"socket {wg_socket}")
    # what the killed hosts' containers leave in the machine's own namespaces: their root
    # filesystems' mounts (before the directories go) and their cgroups
    removed += [f"mount {m}" for m in mounts.unmount_under(LAB_ROOT / name)]
    removed += [f"cgroup {c}" for c in cgroups.remove_children("ferry", f"{name}-")]
    record = record_path(name)
    if record.exists():
        subnet = json.loads(record.read_text())["subnet"]
        with Netlink() as root:
            if root.delete_route(subnet, blackhole=True):
                removed.append(f"route blackhole {subnet}")
    lab_dir = LAB_ROOT / name
    if lab_dir.exists():
        shutil.rmtree(lab_dir, ignore_errors=True)
        removed.append(f"dir {lab_dir}")
    return removed


def _kill_ferryds(name: str) -> None:
    """SIGKILL every ferryd of lab ``name`` and wait until each is gone (at most 10 s)."""
    refs = []
    for pid_file in (LAB_ROOT / name).glob("*/ferryd.pid"):
        pid = _recorded_ferryd(pid_file, f"{name}-{pid_file.parent.name}")
        start = proc.start_time_of(pid) if pid is not None else None
        if pid is not None and start is not None:
            refs.append(proc.ProcRef(pid, start))
    proc.kill_pids([ref.pid for ref in refs])
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and any(ref.alive() for ref in refs):
        time.sleep(0.02)
    for ref in refs:
        proc.reap_exited(ref)


def _kill_in(namespaces: list[str]) -> None:
    """SIGKILL every process living in ``namespaces`` (but this one), until none is left."""
    for _ in range(50):
        pids = [pid for ns in namespaces for pid in nsfs.pids_in_netns(nsfs.netns_path(ns))]
        pids = [pid for pid in pids if pid != os.getpid()]
        if not pids:
            return
        proc.kill_pids(pids)
        time.sleep(0.05)


def _remove_netns(ns: str) -> None:
    # links first: a namespace can outlive its name (held by a dying socket), and its veth
    # peers with it (KERNEL-FACTS)
    try:
        with Netlink(nsfs.netns_path(ns)) as nl:
            for link in nl.links():
                if link.name != "lo":
                    nl.delete_link(link.name)
    except FerryError:
        pass  # a namespace that is already half gone is removed all the same
    nsfs.delete_netns(ns)
