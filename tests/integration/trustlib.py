"""What the trust tests (test_trust*.py) share: a node's certificate files, what etcd takes
from them (``probes/tls_probe.py``), and the store TLS phases the managers record."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry.errors import Unavailable
from ferry.manager.store import keys
from tests.integration.lablib import LabRig, probe


def certs(lab: LabRig, host: str) -> Path:
    return lab.topo.node(host).state_dir / "certs"


def tls(lab: LabRig, host: str, target: str, holder: str, kind: str) -> Any:
    """Whether etcd at ``target`` (HOST:PORT), dialled from ``host``, takes ``holder``'s
    ``node`` or ``store`` certificate: ``probes/tls_probe.py``'s answer."""
    files = certs(lab, holder)
    addr, _, port = target.rpartition(":")
    pem, key = str(files / f"{kind}.pem"), str(files / f"{kind}.key")
    return probe(lab, host, "tls_probe.py", addr, port, pem, key)[0]


def configured_tls_phase(lab: LabRig, host: str) -> int | None:
    """The phase in ``host``'s ``member.json`` (None: written by an older ferryd). It is what
    the member is to run, written *before* its restart: it says nothing of what serves now."""
    record = json.loads((lab.topo.node(host).state_dir / "etcd" / "member.json").read_text())
    phase = record.get("tls_phase")
    return int(phase) if phase is not None else None


def recorded_tls_phases(lab: LabRig, via: str) -> dict[str, int] | None:
    """Node id -> the TLS phase each manager recorded in the store (``storetls/<node>``), read
    through ``via``'s etcd client port with its store certificate; None while that port does
    not take it (an older member, or one restarting). A manager records a phase only once its
    member serves with it again (``StoreUpgrade._advance``): the condition a probe may follow."""
    files = certs(lab, via)
    read = lab.exec(
        via, "etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={files / 'store-ca.pem'}",
        f"--cert={files / 'store.pem'}", f"--key={files / 'store.key'}",
        "get", "--prefix", keys.STORE_TLS, "--write-out=json", check=False,
    )  # fmt: skip
    if read.returncode != 0:
        return None
    return {
        base64.b64decode(kv["key"]).decode().removeprefix(keys.STORE_TLS): int(
            base64.b64decode(kv["value"])
        )
        for kv in json.loads(read.stdout).get("kvs", [])
    }


def recorded_tls_phase_of(
    lab: LabRig, hosts: tuple[str, ...]
) -> Callable[[], dict[str, int | None] | None]:
    """A check for ``wait_until``: host -> its recorded phase (None: none yet), read through
    the first of ``hosts``; None while that host's store does not answer."""
    ids = {host: str(lab.api(host, "/info")["Swarm"]["NodeID"]) for host in hosts}

    def read() -> dict[str, int | None] | None:
        phases = recorded_tls_phases(lab, hosts[0])
        return None if phases is None else {h: phases.get(i) for h, i in ids.items()}

    return read


def every_node_ready(lab: LabRig) -> bool:
    """Whether h1 lists every node ready; False while h1 refuses swarm calls: a manager whose
    store was down answers for the swarm again only once its quorum watch sees a majority
    (``manager/quorum.py``), up to a check later than the store's own first answer."""
    try:
        return {n["Status"]["State"] for n in lab.nodes().values()} == {"ready"}
    except Unavailable:
        return False
