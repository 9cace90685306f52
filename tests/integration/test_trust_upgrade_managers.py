"""Issue 9, finding 3: a swarm of three managers an older ferryd formed moves to the store CA
as each manager restarts on this version (test_trust_upgrade.py: one manager)."""

from __future__ import annotations

from ferry.manager import sealing
from tests.integration.lablib import (
    new_lab,
    older_ferry,
    restart_ferryd,
    wait_for_value,
    wait_until,
)
from tests.integration.trustlib import certs, every_node_ready, recorded_tls_phase_of, tls


def test_three_older_managers_move_to_the_store_ca_as_each_restarts() -> None:
    with older_ferry() as older, new_lab(hosts=3, tools=False) as lab:
        for host in ("h1", "h2", "h3"):
            restart_ferryd(lab, host, code=older)
        lab.import_tools()  # in the older ferryds' own image store
        h1 = lab.topo.node("h1").addr
        lab.ferry("h1", "swarm", "init", "--advertise-addr", h1)
        manager = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        for host in ("h2", "h3"):
            lab.exec(host, "ferry", "swarm", "join", "--token", manager, f"{h1}:2377")
        lab.ferry("h1", "service", "create", "-d", "--name", "keep", "--replicas", "3",
                  "tools", "sleep", "600")  # fmt: skip
        recorded = recorded_tls_phase_of(lab, ("h1", "h2", "h3"))
        restart_ferryd(lab, "h1")
        # the others still run the older ferryd: h1 goes as far as they allow, and no further
        older_left = {"h1": 1, "h2": None, "h3": None}
        wait_for_value(recorded, older_left, 30, "h1 at the phase older members take")
        wait_until(lambda: every_node_ready(lab), 20, "every node ready, h1 serving again")
        for host in ("h2", "h3"):
            restart_ferryd(lab, host)  # each gets the key from h1, and its store certificate
        # what each manager records once its member serves again on the phase, not what its
        # member.json says before the restart
        everyone = {"h1": 3, "h2": 3, "h3": 3}
        wait_for_value(recorded, everyone, 60, "every member on the store CA", every_s=0.5)
        for host in ("h2", "h3"):
            assert tls(lab, host, f"{h1}:2380", host, "store")["status"] == 200
            assert tls(lab, host, f"{h1}:2380", host, "node")["refused"]
        wait_until(lambda: every_node_ready(lab), 20, "every node ready")
        keks = {sealing.parse_key((certs(lab, h) / "kek").read_text()) for h in ("h1", "h2", "h3")}
        assert len(keks) == 1  # one key, shared by the managers
        assert "keep" in lab.ferry("h3", "service", "ls").stdout
