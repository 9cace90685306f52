"""Where a lab is recorded, and how to enter one of its nodes.

Kept apart from :mod:`ferry.lab.lab` (which makes and removes labs through netlink) so that
``ferry lab exec``, run for every command a test or the demo sends into a lab, imports only
this: it starts in half the time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ferry.errors import NotFound
from ferry.kernel import nsfs, proc
from ferry.lab.topology import LAB_ROOT, LabTopology, plan_topology, validate_name


def record_path(name: str) -> Path:
    return LAB_ROOT / name / "lab.json"


def load(name: str) -> LabTopology:
    """The topology of lab ``name``. Raises NotFound when there is no such lab."""
    validate_name(name)
    try:
        record = json.loads(record_path(name).read_text())
    except FileNotFoundError as exc:
        raise NotFound(
            f"no lab named {name!r}: create it with 'ferry lab up --name {name}'"
        ) from exc
    return plan_topology(name, record["hosts"], record["clients"], record["subnet"])


def list_labs() -> list[str]:
    if not LAB_ROOT.is_dir():
        return []
    return sorted(p.name for p in LAB_ROOT.iterdir() if (p / "lab.json").exists())


def exec_path() -> str:
    """``PATH`` for what runs in a lab: this virtual environment's ``bin`` first (ferry)."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return venv_bin + os.pathsep + path if venv_bin not in path.split(os.pathsep) else path


def exec_argv(
    topo: LabTopology, node_name: str, command: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run ``command`` inside a lab node (for os.execvpe). The
    docker CLI there reads and writes the node's own client config (``DOCKER_CONFIG``; the
    CLI makes the directory when it first saves), not the machine's ``~/.docker``."""
    node = topo.node(node_name)
    env = dict(os.environ)
    env["PATH"] = exec_path()
    env["FERRY_LAB"] = topo.name
    env["FERRY_LAB_NODE"] = node.name
    env["DOCKER_CONFIG"] = str(node.docker_config)
    if node.runs_ferryd:
        env["FERRY_HOST"] = f"unix://{node.socket}"
        env["DOCKER_HOST"] = f"unix://{node.socket}"
    return proc.in_netns_argv(nsfs.netns_path(node.netns), command), env
