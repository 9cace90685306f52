"""Issue 9, finding 3: the CA keys are sealed with a key only managers hold, which autolock
keeps off their disks: an autolocked manager restarts locked until unlocked with its key."""

from __future__ import annotations

from ferry.manager import sealing
from tests.integration.lablib import new_lab, restart_ferryd, wait_until
from tests.integration.trustlib import certs

LOCKED = "Swarm is encrypted and needs to be unlocked before it can be used"


def test_an_autolocked_manager_restarts_locked_until_unlocked_with_its_key() -> None:
    with new_lab(hosts=3) as lab:
        h1 = lab.topo.node("h1").addr
        init = lab.exec("h1", "docker", "swarm", "init", "--autolock", "--advertise-addr", h1)
        key = lab.exec("h1", "docker", "swarm", "unlock-key", "-q").stdout.strip()
        assert key.startswith("SWMKEY-1-") and key in init.stdout
        manager = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        worker = lab.ferry("h1", "swarm", "join-token", "-q", "worker").stdout.strip()
        lab.exec("h2", "ferry", "swarm", "join", "--token", manager, f"{h1}:2377")
        assert not (certs(lab, "h1") / "kek").exists()
        assert not (certs(lab, "h2") / "kek").exists()  # a joining manager keeps it off disk too
        lab.ferry("h1", "run", "-d", "--name", "keep", "tools", "sleep", "600")

        restart_ferryd(lab, "h1")
        state = lab.exec("h1", "docker", "info", "--format", "{{.Swarm.LocalNodeState}}")
        assert state.stdout.strip() == "locked"
        refused = lab.exec("h1", "docker", "node", "ls", check=False)
        assert refused.returncode != 0 and LOCKED in refused.stderr
        join = lab.exec(
            "h3", "ferry", "swarm", "join", "--token", worker, f"{h1}:2377", check=False
        )
        assert join.returncode != 0 and LOCKED in join.stderr  # a locked manager admits nobody
        running = lab.ferry("h1", "ps", "--format", "{{.Names}} {{.Status}}").stdout
        assert running.startswith("keep Up")  # its containers run on
        leave = lab.exec("h1", "docker", "swarm", "leave", check=False)
        assert leave.returncode != 0 and "Please unlock it first" in leave.stderr

        wrong = sealing.format_key(sealing.new_kek())
        bad = lab.exec("h1", "sh", "-c", f"echo {wrong} | docker swarm unlock", check=False)
        assert bad.returncode != 0 and "invalid key provided" in bad.stderr
        assert lab.api("h1", "/info")["Swarm"]["LocalNodeState"] == "locked"
        lab.exec("h1", "sh", "-c", f"echo {key} | docker swarm unlock")
        assert "h1" in lab.exec("h1", "docker", "node", "ls").stdout
        lab.exec("h3", "ferry", "swarm", "join", "--token", worker, f"{h1}:2377")

        # without autolock the key is back on every manager's disk: a restart needs no unlock
        lab.exec("h1", "docker", "swarm", "update", "--autolock=false")
        wait_until((certs(lab, "h2") / "kek").exists, 10, "h2's key on its disk")
        assert (certs(lab, "h1") / "kek").exists()
        restart_ferryd(lab, "h1")
        assert lab.api("h1", "/info")["Swarm"]["LocalNodeState"] == "active"
