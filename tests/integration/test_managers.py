"""Manager tokens: more managers, more etcd members — and the swarm survives losing one."""

from __future__ import annotations

import json
import time

from ferry.errors import NoLeader
from ferry.kernel import proc
from ferry.lab import lab as labmod
from ferry.model.node import LEADER_GRACE_S
from tests.integration.lablib import (
    TOOLS,
    LabRig,
    etcd_pid,
    new_lab,
    task_ids,
    wait_for_value,
    wait_until,
)


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

        # Docker's way back: the last manager forms a one-manager swarm of everything it holds
        h3_id = lab.api("h3", "/info")["Swarm"]["NodeID"]
        out = lab.exec("h3", "docker", "swarm", "init", "--force-new-cluster").stdout
        assert f"Swarm initialized: current node ({h3_id}) is now a manager." in out
        want = {"h1": "", "h2": "", "h3": "Leader"}
        wait_for_value(lambda: _manager_status(lab, "h3"), want, 30, "h3 the only manager")
        assert "Managers: 1" in lab.exec("h3", "ferry", "info").stdout
        assert "keep" in lab.exec("h3", "docker", "service", "ls").stdout
        wait_until(
            lambda: set(task_ids(lab, "keep", "h3").values()) == {h3_id}
            and len(task_ids(lab, "keep", "h3")) == 3,
            60, "the service's tasks back, on the node that is up",
        )  # fmt: skip
        lab.exec("h3", "docker", "network", "create", "-d", "overlay", "after-recovery")

        # a lost manager that comes back is no member: it works on as a worker
        labmod.start_ferryd(lab.topo, "h1")
        want = {"h1": "", "h2": "", "h3": "Leader"}

        def h1_back_as_worker() -> bool:
            nodes = lab.nodes("h3")
            return nodes["h1"]["Status"]["State"] == "ready" and (
                lab.api("h1", "/info")["Swarm"]["ControlAvailable"] is False
            )

        wait_until(h1_back_as_worker, 90, "h1 back, as a worker", every_s=1)
        assert _manager_status(lab, "h3") == want
        assert not (lab.topo.node("h1").state_dir / "etcd").exists()


def _manager_status(lab: LabRig, host: str = "h1") -> dict[str, str]:
    """hostname → Docker's MANAGER STATUS of ``docker node ls`` ("" for a worker)."""
    out = lab.exec(host, "docker", "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
    rows = (line.partition(" ") for line in out.stdout.splitlines())
    return {host: status for host, _, status in rows}


def test_nodes_are_promoted_and_demoted_and_keep_their_tasks() -> None:
    """Issue 13: a 5-host lab with 3 managers, made and unmade by ``node promote|demote``."""
    with new_lab(hosts=5) as lab:
        lab.form_swarm()
        lab.ferry("h1", "service", "create", "--name", "keep", "--mode", "global", TOOLS,
                  "sleep", "600")  # fmt: skip
        wait_until(lambda: len(task_ids(lab, "keep")) == 5, 60, "a task on every node")
        before = task_ids(lab, "keep")

        # the root every node trusts, as docker swarm ca prints it; rotating it is refused
        root = (lab.topo.node("h4").state_dir / "certs" / "ca.pem").read_text().strip()
        assert lab.exec("h1", "docker", "swarm", "ca").stdout.strip() == root
        assert lab.exec("h1", "ferry", "swarm", "ca").stdout.strip() == root
        refused = lab.exec("h1", "docker", "swarm", "ca", "--rotate", "-d", check=False)
        assert "CAConfig.ForceRotate" in refused.stderr and "Ferry keeps its root CA" in (
            refused.stderr
        )

        out = lab.exec("h1", "docker", "node", "promote", "h2", "h3").stdout
        assert out.splitlines() == [
            "Node h2 promoted to a manager in the swarm.",
            "Node h3 promoted to a manager in the swarm.",
        ]
        want = {"h1": "Leader", "h2": "Reachable", "h3": "Reachable", "h4": "", "h5": ""}
        wait_for_value(lambda: _manager_status(lab), want, 90, "h2 and h3 managers")
        # the new managers serve the swarm: a write there, and their own view
        lab.exec("h3", "docker", "network", "create", "-d", "overlay", "made-on-h3")
        assert "Managers: 3" in lab.exec("h2", "ferry", "info").stdout
        h3_id = lab.nodes("h2")["h3"]["ID"]
        for cli in ("docker", "ferry"):  # the docker CLI names the node by its ID here
            out = lab.exec("h2", cli, "node", "promote", "h3").stdout
            assert out.strip() == f"Node {h3_id} is already a manager."

        # the leader demotes itself: another takes office, h1 works on as a worker
        out = lab.exec("h1", "docker", "node", "demote", "h1").stdout
        assert out.strip() == "Manager h1 demoted in the swarm."

        def h1_is_a_worker() -> bool:
            try:
                status = _manager_status(lab, "h2")
            except AssertionError:  # no leader yet: the election after h1 stepped down
                return False
            return status["h1"] == "" and "Leader" in (status["h2"], status["h3"])

        wait_until(h1_is_a_worker, 60, "h1 a worker and a new leader", every_s=0.5)
        wait_until(
            lambda: lab.api("h1", "/info")["Swarm"]["ControlAvailable"] is False,
            30, "h1 to run as a worker",
        )  # fmt: skip
        refused = lab.exec("h1", "docker", "node", "ls", check=False).stderr
        assert "This node is not a swarm manager" in refused
        assert not (lab.topo.node("h1").state_dir / "certs" / "kek").exists()
        assert task_ids(lab, "keep", "h2") == before  # nobody's task was replaced

        # back again, from another manager
        lab.exec("h2", "ferry", "node", "update", "--role", "manager", "h1")

        def h1_manages_again() -> bool:
            status = _manager_status(lab, "h2")
            return status["h1"] == "Reachable" and status["h4"] == status["h5"] == ""

        wait_until(h1_manages_again, 90, "h1 a manager again", every_s=0.5)

        # h1 is a voter before its own manager has started: it answers as one a moment later
        def h1_answers() -> tuple[bool, int]:
            swarm = lab.api("h1", "/info")["Swarm"]
            return swarm["ControlAvailable"], swarm["Managers"]

        wait_for_value(h1_answers, (True, 3), 60, "h1 to answer as a manager")

        # refusals, in Docker's words
        refused = lab.exec("h2", "docker", "node", "rm", "--force", "h3", check=False).stderr
        assert "It must be demoted to worker before removal" in refused
        pid = etcd_pid(lab, "h3")
        labmod.stop_ferryd(lab.topo, "h3", kill=True)
        proc.kill_pids([pid])
        wait_until(lambda: lab.node_state("h3") == "down", 60, "h3 down", every_s=0.5)
        refused = lab.exec("h2", "docker", "node", "demote", "h1", check=False).stderr
        assert "this would result in a loss of quorum" in refused
        assert _manager_status(lab, "h2")["h1"] in ("Leader", "Reachable")  # still a manager
        kept = {task for task, node in before.items() if node != h3_id}
        assert kept <= task_ids(lab, "keep", "h2").keys()  # the healthy nodes' tasks stay
