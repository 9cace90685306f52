"""Manager tokens: more managers, more etcd members — and the swarm survives losing one."""

from __future__ import annotations

import json
import time

from ferry.errors import NoLeader
from ferry.kernel import proc
from ferry.lab import lab as labmod
from ferry.model.node import LEADER_GRACE_S
from tests.integration.lablib import TOOLS, etcd_pid, new_lab, wait_until


def test_three_managers_survive_the_loss_of_the_leader() -> None:
    with new_lab(hosts=3) as lab:
        h1 = lab.topo.node("h1")
        lab.ferry("h1", "swarm", "init", "--advertise-addr", h1.addr)
        token = lab.ferry("h1", "swarm", "join-token", "-q", "manager").stdout.strip()
        for host in ("h2", "h3"):
            out = lab.exec(host, "ferry", "swarm", "join", "--token", token, f"{h1.addr}:2377")
            assert "as a manager" in out.stdout
        nodes = lab.nodes()
        assert {n["ManagerStatus"]["Reachability"] for n in nodes.values()} == {"reachable"}
        assert nodes["h1"]["ManagerStatus"]["Leader"]
        members = lab.exec("h2", "ferry", "info").stdout
        assert "Managers: 3" in members
        since = int(time.time()) - 1
        lab.ferry(
            "h2", "service", "create", "--name", "keep", "--replicas", "3", TOOLS, "sleep", "600"
        )
        # every manager shows the swarm's events, whichever manager made the change
        until = str(int(time.time()) + 1)
        seen = lab.exec("h3", "docker", "events", "--since", str(since), "--until", until,
                        "--filter", "type=service", "--format", "{{.Action}} "
                        "{{.Actor.Attributes.name}} {{.Scope}}").stdout  # fmt: skip
        assert "create keep swarm" in seen.splitlines(), seen

        etcd = json.loads((h1.state_dir / "etcd" / "etcd.pid").read_text())
        labmod.stop_ferryd(lab.topo, "h1", kill=True)
        proc.kill_pids([etcd["pid"]])

        def new_leader() -> bool:
            try:
                nodes = lab.nodes("h2")
            except NoLeader:  # Docker's answer too, until the election is over
                return False
            return nodes["h1"]["Status"]["State"] == "down" and any(
                (n.get("ManagerStatus") or {}).get("Leader") for n in nodes.values()
            )

        # the old leader's lease lapses, another takes office, and h1 is Down once its grace ends
        wait_until(new_leader, 20 + LEADER_GRACE_S, "another manager to lead", every_s=0.5)

        def rescheduled() -> bool:
            tasks = lab.api("h2", "/tasks", filters={"service": ["keep"]})
            live = [
                t
                for t in tasks
                if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
            ]
            return len(live) == 3 and all(t["NodeID"] != lab.nodes("h2")["h1"]["ID"] for t in live)

        wait_until(rescheduled, 20, "the lost manager's tasks to run elsewhere", every_s=0.5)
        labmod.start_ferryd(lab.topo, "h1")
        wait_until(lambda: lab.node_state("h1") == "ready", 20, "h1 back", every_s=0.5)

        # Input 7 of issue 8: a manager left without a majority says so instead of serving its
        # frozen view (dead managers Ready, a dead leader).
        for host in ("h1", "h2"):
            pid = etcd_pid(lab, host)
            labmod.stop_ferryd(lab.topo, host, kill=True)
            proc.kill_pids([pid])

        def refused() -> str:
            result = lab.ferry("h3", "node", "ls", check=False)
            return result.stderr if result.returncode != 0 else ""

        message = wait_until(refused, 15, "h3 to refuse node ls", every_s=0.5)
        assert "The swarm does not have a leader" in message
        assert "Swarm: active" in lab.ferry("h3", "info").stdout  # the node itself still answers
