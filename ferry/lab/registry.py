"""The registry of a lab: Debian's ``docker-registry`` (the CNCF distribution server) on its
own lab node, and the ``daemon.json`` that makes every host's ferryd use it.

Design notes. The registry node ``registry`` sits at ``.250`` of the underlay like any other
lab node (namespace ``<lab>-registry``), so hosts reach it over the lab's underlay and nothing
outside the lab can. Its storage is an overlay mount: the lower layer is the machine's cached
registry store (``ferry lab images`` fills it, :mod:`ferry.lab.images`), read-only and shared
by every lab; the upper layer is the lab's own directory, which takes what the lab pushes and
goes with the lab. An overlay rather than a per-lab copy because a copy of the store costs
hundreds of megabytes and seconds per lab, and rather than hard links because the registry
rewrites some files in place (tag links), which would change the cache under other labs.
The lower store is an immutable snapshot directory (a new build makes a new one), because a
lower layer must not change while an overlay is mounted on it (overlayfs.rst).

Each host's daemon.json (written by :mod:`ferry.lab.lab`) holds Docker's keys
``registry-mirrors`` (the registry as Docker Hub's mirror) and ``insecure-registries`` (it
speaks plain HTTP), from ``daemon_config``. ``lab down`` needs nothing special: it kills every
process in the lab's namespaces and unmounts everything under the lab's directory.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ferry.errors import Unavailable
from ferry.kernel import listeners, mounts, nsfs, proc
from ferry.lab.topology import REGISTRY_PORT, LabTopology

REGISTRY_BINARY = "docker-registry"
REGISTRY_START_TIMEOUT_S = 10.0


def registry_config(storage: Path, listen: str, *, service: str) -> dict[str, Any]:
    """The distribution server's configuration (docs: distribution ``configuration.md``),
    as JSON: the server reads YAML, of which JSON is a subset, so no YAML writer is needed.
    ``listen`` is ``host:port``; ``storage`` the filesystem driver's root directory."""
    return {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "fields": {"service": service}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            # the default purges uploads older than a week, every day: never wanted in a
            # store that is mostly a read-only lower layer
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": listen, "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }


def daemon_config(registry: str) -> dict[str, list[str]]:
    """A host's ``daemon.json`` (Docker's keys, dockerd(8)): ``registry`` (``host:port``) as
    the mirror of Docker Hub, and as an insecure (plain HTTP) registry."""
    return {"registry-mirrors": [f"http://{registry}"], "insecure-registries": [registry]}


def start_registry(topo: LabTopology, lower: Path) -> proc.ProcRef:
    """Mount the lab's registry storage (``lower`` read-only under the lab's own upper
    directory) and start the registry on the registry node; returns once it listens.
    Raises Unavailable (with the log's last lines) when it does not start."""
    node = topo.registry
    base = node.run_dir
    storage, upper, work = base / "storage", base / "upper", base / "work"
    for path in (storage, upper, work):
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not mounts.is_mounted(storage):  # a restart keeps the mount (and what was pushed)
        mounts.mount_overlay([lower], upper, work, storage)
    config = base / "config.yml"
    listen = f"{node.addr}:{REGISTRY_PORT}"
    doc = registry_config(storage, listen, service=f"ferry-lab-{topo.name}")
    config.write_text(json.dumps(doc, indent=2) + "\n")
    log = base / "registry.log"
    ref = proc.spawn(
        [REGISTRY_BINARY, "serve", str(config)],
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
        log_path=log,
        netns=nsfs.netns_path(node.netns),
    )
    (base / "registry.pid").write_text(str(ref.pid))
    wait_listening(ref, REGISTRY_PORT, log)
    return ref


def wait_listening(ref: proc.ProcRef, port: int, log: Path) -> None:
    """Wait until process ``ref`` listens on TCP ``port`` in its namespace (at most
    :data:`REGISTRY_START_TIMEOUT_S`); Unavailable with its log's tail if it does not."""
    deadline = time.monotonic() + REGISTRY_START_TIMEOUT_S
    while time.monotonic() < deadline and ref.alive():
        if port in listeners.tcp_listening_ports_of(ref.pid):
            return
        time.sleep(0.02)
    tail = log.read_text().strip().splitlines()[-3:] if log.exists() else []
    raise Unavailable(f"the registry did not start: {' | '.join(tail) or 'no log'}")


def stop_registry(topo: LabTopology, *, kill: bool = False) -> None:
    """Stop the lab's registry (SIGTERM, or SIGKILL with ``kill``) and wait until it is gone
    (at most :data:`REGISTRY_START_TIMEOUT_S`); its storage stays for a start again."""
    pid = registry_pid(topo)
    started = proc.start_time_of(pid) if pid is not None else None
    if pid is None or started is None:
        return
    ref = proc.ProcRef(pid, started)
    proc.kill_pids([pid], signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + REGISTRY_START_TIMEOUT_S
    while ref.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.reap_exited(ref)  # when this process started it (a test, the demo)


def registry_pid(topo: LabTopology) -> int | None:
    """The running registry's pid, if the recorded one still lives in the registry node."""
    node = topo.registry
    try:
        pid = int((node.run_dir / "registry.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if nsfs.in_netns(pid, nsfs.netns_path(node.netns)) else None
