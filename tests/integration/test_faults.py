"""Issue 8: correct under concurrency and faults, with ``ferry doctor --all`` as the oracle.

Each test replays one of the issue's failing inputs (or a fault of the suite) on a 3-host lab
(h1 manager, h2 h3 workers, c1 a client) and ends with the cluster as the store says it is.
``make test`` runs each fault at least once; ``make faults`` repeats the loops
(FERRY_FAULT_REPEAT=5: the manager killed 10 times in a row, 30 fresh overlays raced).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from ferry.kernel import nsfs, proc
from ferry.lab import lab as labmod
from tests.integration.lablib import (
    FERRY,
    TOOLS,
    LabRig,
    etcd_pid,
    new_lab,
    running,
    task_ids,
    tasks,
    wait_doctor_clean,
    wait_until,
)

SERVE = (TOOLS, "python3", "-m", "http.server", "80")
REPEAT = int(os.environ.get("FERRY_FAULT_REPEAT", "1"))


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3, clients=1) as rig:
        rig.form_swarm()
        yield rig


def node_id(lab: LabRig, host: str) -> str:
    return str(lab.nodes()[host]["ID"])


def interface_ip(lab: LabRig, host: str, container: str) -> str:
    out = lab.ferry(host, "exec", container, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    return out.split()[3].split("/")[0] if out.strip() else ""


def container_of(lab: LabRig, host: str, service: str) -> str:
    names = lab.ferry(host, "ps", "--format", "{{.Names}}").stdout.split()
    [name] = [n for n in names if n.startswith(f"{service}.")]
    return name


def remove_services(lab: LabRig, *names: str) -> None:
    lab.ferry("h1", "service", "rm", *names, check=False)


def test_a_task_that_is_the_first_endpoint_of_its_network_gets_its_interface(lab: LabRig) -> None:
    """Input 1: a sandbox made for a starting task was removed by an older network pass."""
    rounds = 6 * REPEAT
    for i in range(rounds):
        lab.ferry("h1", "network", "create", "-d", "overlay", f"racenet{i}")
        lab.ferry("h1", "service", "create", "-q", "--name", f"race{i}", "--network",
                  f"racenet{i}", "--constraint", "node.hostname==h2",
                  TOOLS, "sleep", "3600")  # fmt: skip
        [task] = running(lab, f"race{i}")
        want = task["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
        assert interface_ip(lab, "h2", container_of(lab, "h2", f"race{i}")) == want
    wait_doctor_clean(lab, 10)
    remove_services(lab, *(f"race{i}" for i in range(rounds)))
    for i in range(rounds):
        wait_until(
            lambda i=i: (
                lab.ferry("h1", "network", "rm", f"racenet{i}", check=False).returncode == 0
            ),
            20,
            f"racenet{i} free to remove",
            every_s=0.5,
        )


def test_many_overlays_created_at_once_all_reach_their_tasks(lab: LabRig) -> None:
    """The bounded concurrency case: 10 overlays of 1-3 tasks each, created at the same time."""
    procs = []
    for i in range(10):
        script = (
            f"{FERRY} network create -d overlay burst{i} >/dev/null && "
            f"{FERRY} service create -d -q --name burst{i} --network burst{i} "
            f"--replicas {1 + i % 3} {TOOLS} sleep 3600"
        )
        procs.append(
            subprocess.Popen(
                ["bash", "-c", script],
                env={**os.environ, "FERRY_HOST": lab.socket("h1")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    want = {f"burst{i}": 1 + i % 3 for i in range(10)}
    wait_until(
        lambda: all(len(running(lab, name)) == count for name, count in want.items()),
        60,
        "every burst task running",
        every_s=0.5,
    )
    wait_doctor_clean(lab, 15)
    remove_services(lab, *want)


def test_a_full_network_stalls_no_other_service(lab: LabRig) -> None:
    """Input 2: the tasks that fit run, the others wait with the reason, the rest carry on."""
    lab.ferry("h1", "network", "create", "-d", "overlay", "--subnet", "10.250.0.0/28", "small")
    lab.ferry("h1", "service", "create", "-d", "-q", "--name", "many", "--network", "small",
              TOOLS, "sleep", "3600")  # fmt: skip
    lab.ferry("h1", "service", "scale", "-d", "many=14")
    lab.ferry("h1", "service", "create", "-q", "--name", "other", TOOLS, "sleep", "600")
    assert len(running(lab, "other")) == 1
    wait_until(lambda: len(running(lab, "many")) == 12, 30, "12 tasks of many", every_s=0.5)
    pending = [t for t in tasks(lab, "many") if t["Status"]["State"] == "pending"]
    assert len(pending) == 2
    reason = "no free address on network small (10.250.0.0/28)"
    # Docker's place for the scheduler's reason is Status.Err: the ERROR column of service ps
    assert {t["Status"]["Err"] for t in pending} == {reason}
    ps = lab.ferry("h1", "service", "ps", "many").stdout
    assert reason in ps
    errors = lab.exec("h1", "docker", "service", "ps", "--no-trunc", "--format", "{{.Error}}",
                      "many").stdout.splitlines()  # fmt: skip
    assert errors.count(f'"{reason}"') == 2  # quoted, as the docker CLI shows it
    wait_doctor_clean(lab, 10)
    remove_services(lab, "many", "other")


def test_a_short_restart_of_the_only_manager_loses_no_task(lab: LabRig) -> None:
    """Input 3: every node gets a grace period to report in; nothing is replaced."""
    lab.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "mnet")
    lab.ferry("h1", "service", "create", "-q", "--name", "web", "--network", "mnet",
              "--replicas", "3", *SERVE)  # fmt: skip
    before = task_ids(lab, "web")
    assert len(set(before.values())) == 3
    for _ in range(2 * REPEAT):
        labmod.stop_ferryd(lab.topo, "h1", kill=True)
        time.sleep(5)  # the outage of the input: longer than a session's lease
        labmod.start_ferryd(lab.topo, "h1")
        wait_until(
            lambda: {n["Status"]["State"] for n in lab.nodes().values()} == {"ready"},
            15,
            "every node ready again",
            every_s=0.5,
        )
        time.sleep(8)  # past the new leader's grace: a lost node would be replaced by now
        assert task_ids(lab, "web") == before
    wait_doctor_clean(lab, 10)
    remove_services(lab, "web")


def test_every_ferryd_killed_at_once_and_restarted_loses_no_task(lab: LabRig) -> None:
    """Input 3, the other case: a kill -9 of every ferryd at once, the manager's included."""
    lab.ferry("h1", "service", "create", "-q", "--name", "all3", "--replicas", "3",
              "tools", "sleep", "3600")  # fmt: skip
    before = task_ids(lab, "all3")
    for host in ("h1", "h2", "h3"):
        labmod.stop_ferryd(lab.topo, host, kill=True)
    time.sleep(3)
    for host in ("h1", "h2", "h3"):
        labmod.start_ferryd(lab.topo, host)
    wait_until(
        lambda: {n["Status"]["State"] for n in lab.nodes().values()} == {"ready"},
        15,
        "every node ready again",
        every_s=0.5,
    )
    time.sleep(8)  # past the new leader's grace
    assert task_ids(lab, "all3") == before
    wait_doctor_clean(lab, 10)
    remove_services(lab, "all3")


def test_a_global_service_with_a_host_port_settles_after_a_worker_was_away(lab: LabRig) -> None:
    """Input 4: one new task on the returned node, 3/3, and no churn of task records."""
    lab.ferry("h1", "service", "create", "-q", "--name", "g", "--mode", "global", "--publish",
              "published=9003,target=80,mode=host", *SERVE)  # fmt: skip
    labmod.stop_ferryd(lab.topo, "h3", kill=True)
    wait_until(lambda: lab.node_state("h3") == "down", 20, "h3 down", every_s=0.5)
    labmod.start_ferryd(lab.topo, "h3")
    wait_until(lambda: len(running(lab, "g")) == 3, 30, "g 3/3", every_s=0.5)
    count = len(tasks(lab, "g"))
    time.sleep(3)
    assert len(tasks(lab, "g")) == count <= 5  # 3 running, the orphaned one, no churn
    wait_doctor_clean(lab, 10)
    remove_services(lab, "g")


def _hammer(lab: LabRig, url: str, seconds: int) -> subprocess.Popen[str]:
    """From c1: a new connection every 50 ms for ``seconds``; prints one line per failure."""
    loop = (
        f"end=$((SECONDS+{seconds})); while [ $SECONDS -lt $end ]; do "
        f"curl -s -o /dev/null -m 1 {url} || echo fail; sleep 0.05; done"
    )
    return subprocess.Popen(
        [FERRY, "lab", "exec", "--name", lab.name, "c1", "--", "bash", "-c", loop],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_restart_of_ferryd_keeps_published_ports_open(lab: LabRig) -> None:
    """Input 5: the published-port table is never emptied by a restarting ferryd."""
    lab.ferry("h1", "service", "create", "-q", "--name", "pub", "-p", "8090:80", "--replicas",
              "2", *SERVE)  # fmt: skip
    h2 = lab.topo.node("h2").addr
    hammer = _hammer(lab, f"http://{h2}:8090/", 12)
    time.sleep(1)
    for kill in (False, True):
        labmod.stop_ferryd(lab.topo, "h2", kill=kill)
        labmod.start_ferryd(lab.topo, "h2")
        time.sleep(1.5)
    out, _ = hammer.communicate(timeout=60)
    assert out.count("fail") == 0, out
    wait_doctor_clean(lab, 10)
    remove_services(lab, "pub")


def test_a_dead_hosts_containers_leave_every_other_hosts_names_and_tables(lab: LabRig) -> None:
    """Input 6: Down means not served anywhere; back means served again within seconds."""
    lab.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "dnet")
    lab.ferry("h2", "run", "-d", "--name", "asker", "--network", "dnet", TOOLS, "sleep", "3600")
    lab.ferry("h3", "run", "-d", "--name", "far", "--network", "dnet", TOOLS, "sleep", "3600")

    def resolves() -> bool:
        result = lab.ferry("h2", "exec", "asker", "getent", "hosts", "far", check=False)
        return result.returncode == 0

    assert resolves()
    labmod.stop_ferryd(lab.topo, "h3", kill=True)
    wait_until(lambda: lab.node_state("h3") == "down", 20, "h3 down", every_s=0.5)
    wait_until(lambda: not resolves(), 3, "far gone from DNS on h2", every_s=0.2)
    inspect = lab.ferry("h1", "network", "inspect", "dnet").stdout
    assert '"far"' not in inspect
    wait_doctor_clean(lab, 10, down=("h3",))  # the others must be clean
    labmod.start_ferryd(lab.topo, "h3")
    wait_until(resolves, 10, "far back in DNS on h2", every_s=0.2)
    wait_doctor_clean(lab, 10)
    lab.ferry("h2", "rm", "-f", "asker")
    lab.ferry("h3", "rm", "-f", "far")


def test_a_killed_etcd_is_restarted_and_loses_nothing(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "-q", "--name", "steady", "--replicas", "3",
              TOOLS, "sleep", "3600")  # fmt: skip
    before = task_ids(lab, "steady")
    old = etcd_pid(lab, "h1")
    proc.kill_pids([old])
    wait_until(lambda: etcd_pid(lab, "h1") != old, 20, "etcd restarted", every_s=0.5)
    wait_until(
        lambda: lab.ferry("h1", "node", "ls", check=False).returncode == 0, 20, "the store back"
    )
    time.sleep(8)
    assert task_ids(lab, "steady") == before
    wait_doctor_clean(lab, 10)
    remove_services(lab, "steady")


def test_a_dead_host_has_its_tasks_replaced_and_comes_back_clean(lab: LabRig) -> None:
    """A whole host dies (ferryd and its containers): its tasks run elsewhere within 10 s."""
    lab.ferry("h1", "service", "create", "-q", "--name", "spread", "--replicas", "3",
              TOOLS, "sleep", "3600")  # fmt: skip
    h3 = node_id(lab, "h3")
    before = task_ids(lab, "spread")
    labmod.stop_ferryd(lab.topo, "h3", kill=True)
    prefix = f"{lab.name}-h3-c-"
    proc.kill_pids(
        [pid for ns in nsfs.list_netns(prefix) for pid in nsfs.pids_in_netns(nsfs.netns_path(ns))]
    )
    wait_until(
        lambda: len(now := task_ids(lab, "spread")) == 3 and h3 not in now.values(),
        20,
        "spread's tasks running off h3",
        every_s=0.5,
    )
    survivors = {t for t, n in before.items() if n != h3}
    assert survivors <= set(task_ids(lab, "spread"))  # healthy nodes lost nothing
    labmod.start_ferryd(lab.topo, "h3")
    wait_until(lambda: lab.node_state("h3") == "ready", 20, "h3 back", every_s=0.5)
    wait_doctor_clean(lab, 10)
    remove_services(lab, "spread")


def test_a_partitioned_worker_keeps_its_tasks_once_it_is_back(lab: LabRig) -> None:
    """The underlay of h2 goes down for 20 s: its tasks are replaced meanwhile, and the old ones
    stop when it is back; everything ends as the store says."""
    lab.ferry("h1", "service", "create", "-q", "--name", "cut", "--replicas", "3",
              TOOLS, "sleep", "3600")  # fmt: skip
    netns = nsfs.netns_path(f"{lab.name}-h2")
    subprocess.run(proc.in_netns_argv(netns, ["ip", "link", "set", "eth0", "down"]), check=True)
    try:
        wait_until(lambda: lab.node_state("h2") == "down", 20, "h2 down", every_s=0.5)
        h2 = node_id(lab, "h2")
        wait_until(
            lambda: len(now := task_ids(lab, "cut")) == 3 and h2 not in now.values(),
            20,
            "cut's tasks running off h2",
            every_s=0.5,
        )
        time.sleep(8)
    finally:
        subprocess.run(proc.in_netns_argv(netns, ["ip", "link", "set", "eth0", "up"]), check=True)
    wait_until(lambda: lab.node_state("h2") == "ready", 20, "h2 back", every_s=0.5)
    wait_doctor_clean(lab, 15)
    remove_services(lab, "cut")
