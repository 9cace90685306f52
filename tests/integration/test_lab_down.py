"""Issue 2 and issue 8, input 8: ``lab down`` leaves nothing behind, also while its ferryds
are making namespaces. Each test makes its own labs."""

from __future__ import annotations

import json
import subprocess

from ferry.kernel import nsfs, proc
from ferry.kernel.netlink import Netlink
from ferry.lab import lab as labmod
from tests.integration.lablib import FERRY, TOOLS, new_lab, wait_until


def test_lab_down_leaves_nothing_behind() -> None:
    with new_lab(hosts=2) as lab:
        lab.form_swarm()
        name, subnet = lab.name, lab.topo.subnet
        h1 = lab.topo.node("h1")
        pids = [labmod.ferryd_pid(h) for h in lab.topo.hosts]
        assert all(pids)  # every ferryd is tracked below, none silently left out
        etcd = json.loads((h1.state_dir / "etcd" / "etcd.pid").read_text())
        tracked = [proc.ProcRef(p, proc.start_time_of(p) or -1) for p in pids if p]
        tracked.append(proc.ProcRef(etcd["pid"], etcd["start_time"]))
        assert all(ref.alive() for ref in tracked)
    assert nsfs.list_netns(f"{name}-") == []
    assert not any(ref.alive() for ref in tracked)
    assert not h1.run_dir.exists()
    with Netlink() as root:
        assert all(dst != subnet for dst, _gw, _kind in root.routes())
    again = subprocess.run(
        [FERRY, "lab", "down", "--name", name], capture_output=True, text=True, check=False
    )
    assert again.returncode == 0, again.stderr  # a second down is harmless


def test_lab_down_while_ferryds_make_namespaces_leaves_none() -> None:
    """Issue 8, input 8: namespaces made while ``lab down`` runs (a service starting its
    tasks) are removed too: every ferryd is gone before anything is listed."""
    for _ in range(3):
        with new_lab(hosts=2) as lab:
            lab.form_swarm()
            lab.ferry("h1", "network", "create", "-d", "overlay", "busy")
            lab.ferry("h1", "service", "create", "-d", "--name", "busy", "--network", "busy",
                      "--replicas", "12", TOOLS, "sleep", "600")  # fmt: skip
            wait_until(
                lambda lab=lab: any("-c-" in ns for ns in nsfs.list_netns(f"{lab.name}-")),
                20,
                "the first task namespaces",
                every_s=0.05,
            )
            labmod.down(lab.name)
            assert nsfs.list_netns(f"{lab.name}-") == []
