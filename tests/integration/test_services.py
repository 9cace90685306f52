"""Issue 4: services — spread, self-healing, node loss, service DNS and VIP load balancing,
placement and refusals. Services through the docker CLI, docker-py and docker stack are
test_services_docker_cli.py's (a lab of its own, so the workers run both side by side)."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator

import pytest

from ferry.kernel import nsfs, proc
from ferry.lab import lab as labmod
from ferry.lab.apps import WHOAMI
from tests.integration.lablib import (
    DOWN_WITHIN_S,
    TOOLS,
    LabRig,
    new_lab,
    running,
    tasks,
    wait_until,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3) as rig:
        rig.form_swarm()
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "svcnet")
        rig.ferry(
            "h1", "run", "-d", "--network", "svcnet", "--name", "client", TOOLS, "sleep", "3600"
        )
        yield rig


def wait_off_node(lab: LabRig, node_id: str, timeout_s: float) -> None:
    """Until web's 3 tasks run again, none of them on ``node_id``."""
    wait_until(
        lambda: len(now := running(lab, "web")) == 3 and all(t["NodeID"] != node_id for t in now),
        timeout_s,
        f"3 tasks of web running, none on {node_id[:12]}",
    )


def running_ips(lab: LabRig, service: str) -> set[str]:
    return {
        t["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
        for t in running(lab, service)
        if t["NetworksAttachments"]
    }


def dns(lab: LabRig, name: str) -> set[str]:
    out = lab.ferry("h1", "exec", "client", "getent", "ahostsv4", name, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def hits(lab: LabRig, url: str, count: int) -> collections.Counter[str]:
    script = f"for i in $(seq {count}); do curl -s -m 2 {url}; echo; done"
    out = lab.ferry("h1", "exec", "client", "sh", "-c", script).stdout
    return collections.Counter(line for line in out.splitlines() if line)


def create_web(lab: LabRig, name: str, replicas: int, *extra: str) -> None:
    lab.ferry(
        "h1", "service", "create", "--name", name, "--network", "svcnet", "--replicas",
        str(replicas), *extra, TOOLS, "python3", "-c", WHOAMI,
    )  # fmt: skip


def test_replicas_spread_over_the_hosts_and_the_vip_reaches_every_one(lab: LabRig) -> None:
    create_web(lab, "web", 3)
    nodes = {t["NodeID"] for t in running(lab, "web")}
    assert len(nodes) == 3, "3 replicas on 3 hosts"
    assert dns(lab, "tasks.web") == running_ips(lab, "web")
    [vip] = dns(lab, "web")
    assert vip not in running_ips(lab, "web")
    counts = hits(lab, "http://web/", 300)
    assert sum(counts.values()) == 300
    assert len(counts) == 3, counts
    assert max(counts.values()) / min(counts.values()) <= 1.3, counts


def test_scaling_keeps_dns_and_vip_equal_to_the_running_tasks(lab: LabRig) -> None:
    for replicas in (6, 2):
        lab.ferry("h1", "service", "scale", f"web={replicas}")
        ips = running_ips(lab, "web")
        assert len(ips) == replicas
        assert dns(lab, "tasks.web") == ips
        counts = hits(lab, "http://web/", 12 * replicas)
        assert len(counts) == replicas, counts
    ps = lab.ferry("h1", "service", "ps", "web").stdout
    assert ps.count("Running") >= 2


def test_a_killed_task_process_is_replaced(lab: LabRig) -> None:
    [victim] = [t for t in running(lab, "web") if t["Slot"] == 1]
    host = next(
        h.name
        for h in lab.topo.hosts
        if lab.api(h.name, "/info")["Swarm"]["NodeID"] == victim["NodeID"]
    )
    pid = lab.api(host, f"/containers/{victim['Status']['ContainerStatus']['ContainerID']}/json")[
        "State"
    ]["Pid"]
    proc.kill_pids([pid])

    def replaced() -> bool:
        slot1 = [t for t in running(lab, "web") if t["Slot"] == 1]
        return bool(slot1) and slot1[0]["ID"] != victim["ID"]

    wait_until(replaced, 15, "slot 1 to run a new task")
    old = next(t for t in tasks(lab, "web") if t["ID"] == victim["ID"])
    assert old["Status"]["State"] == "failed"
    assert dns(lab, "tasks.web") == running_ips(lab, "web")


def test_tasks_of_a_lost_worker_are_rescheduled_elsewhere(lab: LabRig) -> None:
    lab.ferry("h1", "service", "scale", "web=3")
    h3 = lab.api("h3", "/info")["Swarm"]["NodeID"]
    wait_until(lambda: any(t["NodeID"] == h3 for t in running(lab, "web")), 10, "a task on h3")
    # ferryd and every container of h3 die: SIGKILL to everything in its namespaces
    labmod.stop_ferryd(lab.topo, "h3", kill=True)
    try:
        for ns in nsfs.list_netns(f"{lab.name}-h3-c-"):
            proc.kill_pids(nsfs.pids_in_netns(nsfs.netns_path(ns)))
        killed = time.monotonic()
        wait_until(lambda: lab.node_state("h3") == "down", DOWN_WITHIN_S, "h3 Down")
        down = time.monotonic()
        wait_off_node(lab, h3, 15)
        assert time.monotonic() - down <= 15
        assert time.monotonic() - killed <= DOWN_WITHIN_S + 15
        counts = hits(lab, "http://web/", 30)
        assert len(counts) == 3, counts
    finally:
        labmod.start_ferryd(lab.topo, "h3")
    wait_until(lambda: lab.node_state("h3") == "ready", 10, "h3 Ready again")


def test_draining_a_node_moves_its_tasks(lab: LabRig) -> None:
    lab.ferry("h1", "node", "update", "--availability", "drain", "h2")
    try:
        h2 = lab.api("h2", "/info")["Swarm"]["NodeID"]
        wait_off_node(lab, h2, 20)
    finally:
        lab.ferry("h1", "node", "update", "--availability", "active", "h2")


def test_a_rolling_update_replaces_every_task_with_the_new_spec(lab: LabRig) -> None:
    before = {t["ID"] for t in running(lab, "web")}
    lab.ferry("h1", "service", "update", "--env-add", "COLOR=blue", "web")
    now = running(lab, "web")
    assert len(now) == 3
    assert not before & {t["ID"] for t in now}
    assert all("COLOR=blue" in t["Spec"]["ContainerSpec"]["Env"] for t in now)
    # `service ps`: each slot's running task heads its group, what the slot ran before below
    rows = lab.ferry("h1", "service", "ps", "web").stdout.splitlines()[1:]
    desired = {row: row.split()[5 if "\\_" in row else 4] for row in rows}
    assert list(desired.values()).count("Running") == 3, "\n".join(rows)
    assert all("\\_" not in row for row in rows if desired[row] == "Running"), "\n".join(rows)


def test_dnsrr_services_resolve_to_their_tasks(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "--name", "rr", "--network", "svcnet", "--replicas", "2",
              "--endpoint-mode", "dnsrr", TOOLS, "sleep", "600")  # fmt: skip
    assert dns(lab, "rr") == running_ips(lab, "rr") == dns(lab, "tasks.rr")
    lab.ferry("h1", "service", "rm", "rr")


def test_global_services_run_one_task_per_node(lab: LabRig) -> None:
    lab.ferry(
        "h1", "service", "create", "--name", "agent", "--mode", "global", TOOLS, "sleep", "600"
    )
    assert len({t["NodeID"] for t in running(lab, "agent")}) == 3
    scaled = lab.ferry("h1", "service", "scale", "agent=5", check=False)
    assert scaled.returncode != 0
    assert "replicated mode" in scaled.stderr
    lab.ferry("h1", "service", "rm", "agent")


def test_service_logs_gather_every_task(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "--name", "talk", "--replicas", "3", TOOLS, "sh", "-c",
              "echo hello from $(hostname); sleep 600")  # fmt: skip
    out = lab.ferry("h1", "service", "logs", "talk").stdout
    lines = [line for line in out.splitlines() if "hello from" in line]
    assert len(lines) == 3
    assert {line.split("@")[1].split()[0] for line in lines} == {"h1", "h2", "h3"}
    lab.ferry("h1", "service", "rm", "talk")


def test_bad_service_input_is_refused_clearly(lab: LabRig) -> None:
    before = lab.ferry("h1", "service", "ls", "-q").stdout
    cases = [
        (["--name", "neg", "--replicas", "-1", TOOLS, "true"], "cannot be negative"),
        (["--name", "huge", "--replicas", "5000", TOOLS, "true"], "at most"),
        (["--name", "nonet", "--network", "nosuchnet", TOOLS, "true"], "not found"),
        (["--name", "web", TOOLS, "true"], "already exists"),
        (["--name", "client", "--network", "svcnet", TOOLS, "true"], "taken by a container"),
        (
            ["--name", "badc", "--constraint", "node.planet==mars", TOOLS, "true"],
            "invalid constraint",
        ),
    ]
    for args, message in cases:
        result = lab.ferry("h1", "service", "create", "-d", *args, check=False)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
    assert lab.ferry("h1", "service", "ls", "-q").stdout == before


def test_a_service_of_an_image_no_node_has_is_placed_and_its_tasks_say_why(lab: LabRig) -> None:
    """Nodes pull a task's image (the scheduler does not look for it): a name no registry has
    fails each task with Docker's error, and the restart delay retries it (tested in
    tests/unit/test_service_images.py)."""
    lab.ferry("h1", "service", "create", "-d", "--name", "noimg", "nosuchimage", "true")
    try:
        wait_until(
            lambda: [t for t in tasks(lab, "noimg") if t["Status"]["Err"]], 30, "a failed task"
        )
        failed = [t for t in tasks(lab, "noimg") if t["Status"]["Err"]]
        assert "No such image: nosuchimage" in failed[0]["Status"]["Err"]
        assert failed[0]["NodeID"]  # it was placed on a node that never had the image
    finally:
        lab.ferry("h1", "service", "rm", "noimg")


def test_an_unsatisfiable_constraint_leaves_tasks_pending_with_the_reason(lab: LabRig) -> None:
    result = lab.ferry("h1", "service", "create", "--name", "nowhere", "--constraint",
                       "node.hostname==atlantis", TOOLS, "sleep", "60", check=False)  # fmt: skip
    assert result.returncode != 0
    assert "no suitable node" in result.stderr
    ps = lab.ferry("h1", "service", "ps", "nowhere").stdout
    assert "Pending" in ps
    assert "scheduling constraints not satisfied" in ps
    lab.ferry("h1", "service", "rm", "nowhere")


def test_an_update_keeps_tasks_for_labels_and_moves_them_for_a_constraint(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "--name", "pin", "--replicas", "2", TOOLS, "sleep", "600")
    try:
        first = {t["ID"] for t in running(lab, "pin")}
        lab.ferry("h1", "service", "update", "--label-add", "tier=back",
                  "--restart-condition", "on-failure", "pin")  # fmt: skip
        assert {t["ID"] for t in running(lab, "pin")} == first  # nothing to roll over
        spec = lab.api("h1", "/services/pin")["Spec"]
        assert spec["Labels"] == {"tier": "back"}
        assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure"
        h2 = lab.api("h2", "/info")["Swarm"]["NodeID"]
        lab.ferry("h1", "service", "update", "--constraint-add", f"node.id=={h2}", "pin")
        now = running(lab, "pin")
        assert len(now) == 2
        assert all(t["NodeID"] == h2 for t in now)
        assert not first & {t["ID"] for t in now}
        assert lab.api("h1", "/services/pin")["UpdateStatus"]["State"] == "completed"
    finally:
        lab.ferry("h1", "service", "rm", "pin")
