"""Manager tokens: more managers, more etcd members — and the swarm survives losing one."""

from __future__ import annotations

import time

from ferry.kernel import proc
from ferry.lab import lab as labmod
from tests.integration.lablib import (
    TOOLS,
    LabRig,
    etcd_pid,
    new_lab,
    task_ids,
    wait_for_value,
    wait_until,
)


def test_three_managers_lose_their_majority_and_recover_with_force_new_cluster() -> None:
    """The loss of the leader alone is test_failover.py's; here two of three managers go."""
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


def _managers(lab: LabRig, host: str) -> set[str] | None:
    """The managers as ``host`` lists them, if exactly one of them leads and no other node
    shows a manager status; None otherwise (an election, or a role being taken)."""
    try:
        status = _manager_status(lab, host)
    except AssertionError:  # no leader at this moment
        return None
    managers = {h for h, s in status.items() if s in ("Leader", "Reachable")}
    leaders = [h for h, s in status.items() if s == "Leader"]
    others = {s for h, s in status.items() if h not in managers}
    return managers if len(leaders) == 1 and others <= {""} else None


def _answers_as(lab: LabRig, host: str, manager: bool, managers: int) -> bool:
    swarm = lab.api(host, "/info")["Swarm"]
    return bool(swarm["ControlAvailable"] is manager and swarm["Managers"] == managers)


def test_nodes_are_promoted_and_demoted_and_keep_their_tasks() -> None:
    """Issue 13: a 5-host lab with 3 managers, made and unmade by ``node promote|demote``."""
    with new_lab(hosts=5) as lab:
        lab.form_swarm()
        lab.ferry("h1", "service", "create", "--name", "keep", "--mode", "global", TOOLS,
                  "sleep", "600")  # fmt: skip
        wait_until(lambda: len(task_ids(lab, "keep")) == 5, 60, "a task on every node")
        before = task_ids(lab, "keep")

        # the root every node trusts, as docker swarm ca prints it (its rotation is
        # test_ca_rotation.py's)
        root = (lab.topo.node("h4").state_dir / "certs" / "ca.pem").read_text().strip()
        assert lab.exec("h1", "docker", "swarm", "ca").stdout.strip() == root
        assert lab.exec("h1", "ferry", "swarm", "ca").stdout.strip() == root

        out = lab.exec("h1", "docker", "node", "promote", "h2", "h3").stdout
        assert out.splitlines() == [
            "Node h2 promoted to a manager in the swarm.",
            "Node h3 promoted to a manager in the swarm.",
        ]
        three = {"h1", "h2", "h3"}
        wait_for_value(lambda: _managers(lab, "h1"), three, 90, "h2 and h3 managers")
        for host in ("h2", "h3"):  # a voter answers as a manager once its manager runs
            wait_until(lambda h=host: _answers_as(lab, h, True, 3), 60, f"{host} a manager")
        # the new managers serve the swarm: a write there; and a new certificate leaves the
        # node deaf to nothing: a new task placed on it runs
        lab.exec("h3", "docker", "network", "create", "-d", "overlay", "made-on-h3")
        lab.exec("h3", "docker", "service", "create", "-d", "--name", "on-h2", "--constraint",
                 "node.hostname==h2", TOOLS, "sleep", "600")  # fmt: skip
        wait_until(lambda: len(task_ids(lab, "on-h2", "h3")) == 1, 60, "a new task on h2")
        h3_id = lab.nodes("h2")["h3"]["ID"]
        for cli in ("docker", "ferry"):  # the docker CLI names the node by its ID here
            out = lab.exec("h2", cli, "node", "promote", "h3").stdout
            assert out.strip() == f"Node {h3_id} is already a manager."

        # the leader... or not: h1 demotes itself; the others lead, h1 works on as a worker
        out = lab.exec("h1", "docker", "node", "demote", "h1").stdout
        assert out.strip() == "Manager h1 demoted in the swarm."
        wait_for_value(lambda: _managers(lab, "h2"), {"h2", "h3"}, 60, "h1 a worker")
        wait_until(lambda: _answers_as(lab, "h1", False, 0), 60, "h1 to run as a worker")
        refused = lab.exec("h1", "docker", "node", "ls", check=False).stderr
        assert "This node is not a swarm manager" in refused
        assert not (lab.topo.node("h1").state_dir / "certs" / "kek").exists()
        assert task_ids(lab, "keep", "h2") == before  # nobody's task was replaced

        # back again, from another manager
        lab.exec("h2", "ferry", "node", "update", "--role", "manager", "h1")
        wait_for_value(lambda: _managers(lab, "h2"), three, 90, "h1 a manager again")
        wait_until(lambda: _answers_as(lab, "h1", True, 3), 60, "h1 to answer as a manager")

        # refusals, in Docker's words
        refused = lab.exec("h2", "docker", "node", "rm", "--force", "h3", check=False).stderr
        assert "It must be demoted to worker before removal" in refused
        refused = lab.exec("h2", "docker", "swarm", "leave", check=False).stderr
        assert "Removing this node leaves 2 managers out of 3. The only way" in refused
        pid = etcd_pid(lab, "h3")
        labmod.stop_ferryd(lab.topo, "h3", kill=True)
        proc.kill_pids([pid])
        wait_until(lambda: lab.node_state("h3") == "down", 60, "h3 down", every_s=0.5)
        refused = lab.exec("h2", "docker", "node", "demote", "h1", check=False).stderr
        assert "this would result in a loss of quorum" in refused
        refused = lab.exec("h2", "docker", "swarm", "leave", check=False).stderr
        assert "leaves 1 managers out of 3. Without a Raft quorum" in refused
        status = _manager_status(lab, "h2")  # nothing changed
        assert status["h3"] == "Unreachable"
        assert {status["h1"], status["h2"]} <= {"Leader", "Reachable"}
        kept = {task for task, node in before.items() if node != h3_id}
        assert kept <= task_ids(lab, "keep", "h2").keys()  # the healthy nodes' tasks stay

        # two demoted in one command: each member votes until the leader has removed it, so
        # the swarm keeps its quorum all the way down to one manager
        labmod.start_ferryd(lab.topo, "h3")
        wait_until(lambda: lab.node_state("h3") == "ready", 60, "h3 back", every_s=0.5)
        lab.exec("h1", "docker", "node", "demote", "h2", "h3")
        wait_for_value(lambda: _managers(lab, "h1"), {"h1"}, 90, "h1 the only manager")
        for host in ("h2", "h3"):
            wait_until(lambda h=host: _answers_as(lab, h, False, 0), 60, f"{host} a worker")

        def written() -> bool:  # the last removal may cost an election: "no leader" meanwhile
            lab.exec("h1", "docker", "network", "create", "-d", "overlay", "after", check=False)
            return (
                lab.exec("h1", "docker", "network", "inspect", "after", check=False).returncode == 0
            )

        wait_until(written, 30, "a write on the one manager left", every_s=0.5)
