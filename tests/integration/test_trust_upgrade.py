"""Issue 9, finding 3: a swarm formed by an older ferryd (before the store CA and the sealed CA
key) moves to the store CA when its manager restarts on this version; and the lab's way of
running that older ferryd."""

from __future__ import annotations

from pathlib import Path

from ferry.lab import lab as labmod
from tests.integration.lablib import (
    new_lab,
    older_ferry,
    restart_ferryd,
    wait_for_value,
    wait_until,
)
from tests.integration.trustlib import certs, configured_tls_phase, recorded_tls_phase_of, tls


def test_a_swarm_an_older_ferryd_formed_moves_to_the_store_ca_on_restart() -> None:
    with older_ferry() as older, new_lab(hosts=3, tools=False) as lab:
        for host in ("h1", "h2"):
            restart_ferryd(lab, host, code=older)
        lab.import_tools()  # in each ferryd's own image store (the older one keeps flat roots)
        h1 = lab.topo.node("h1").addr
        lab.ferry("h1", "swarm", "init", "--advertise-addr", h1)
        worker = lab.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        lab.exec("h2", "ferry", "swarm", "join", "--token", worker, f"{h1}:2377")
        assert configured_tls_phase(lab, "h1") is None  # what the older ferryd made
        assert tls(lab, "h2", f"{h1}:2380", "h2", "node")["status"] == 200  # the flaw being fixed
        lab.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "carry")
        lab.ferry("h2", "run", "-d", "--name", "old", "--network", "carry", "tools", "sleep", "600")

        restart_ferryd(lab, "h1")  # this version, on the same state
        recorded = recorded_tls_phase_of(lab, ("h1",))
        wait_for_value(recorded, {"h1": 3}, 30, "h1's etcd on the store CA (recorded)")
        assert tls(lab, "h2", f"{h1}:2380", "h2", "node")["refused"]
        assert (certs(lab, "h1") / "kek").exists()
        restart_ferryd(lab, "h2")
        wait_until(lambda: lab.node_state("h2") == "ready", 20, "h2 back")
        manager = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        lab.exec("h3", "ferry", "swarm", "join", "--token", manager, f"{h1}:2377")
        assert tls(lab, "h3", f"{h1}:2380", "h3", "store")["status"] == 200
        nodes = lab.nodes()
        assert {n["Status"]["State"] for n in nodes.values()} == {"ready"}
        assert lab.ferry("h2", "ps", "--format", "{{.Names}}").stdout.split() == ["old"]
        lab.ferry("h3", "run", "-d", "--name", "new", "--network", "carry", "tools", "sleep", "600")
        lab.exec("h3", "ferry", "exec", "new", "getent", "hosts", "old")


def test_lab_start_runs_another_source_tree_when_asked() -> None:
    """The test above and test_trust_upgrade_managers.py lean on it: an older ferryd really
    runs the older code."""
    with older_ferry() as older, new_lab(hosts=1) as lab:
        restart_ferryd(lab, "h1", code=older)
        pid = labmod.ferryd_pid(lab.topo.node("h1"))
        assert pid is not None
        cwd = Path(f"/proc/{pid}/cwd").resolve()
        assert cwd == older.resolve()
