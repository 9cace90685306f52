"""Issue 8: correct under concurrency and faults, with ``ferry doctor --all`` as the oracle.

Each test replays one of the issue's failing inputs (or a fault of the suite) on a 3-host lab
(h1 manager, h2 h3 workers, c1 a client) and ends with the cluster as the store says it is.
``make test`` runs each fault at least once; ``make faults`` repeats the loops
(FERRY_FAULT_REPEAT=5: the manager killed 10 times in a row, 30 fresh overlays raced).
The suite is three modules, each on its own lab: this one (races and placement), ``_restarts``
(ferryd, etcd and the manager killed or restarted) and ``_hosts`` (hosts dead or cut off).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from ferry.lab import lab as labmod
from tests.integration.faults_common import (
    REPEAT,
    SERVE,
    container_of,
    interface_ip,
    remove_services,
)
from tests.integration.lablib import (
    DOWN_WITHIN_S,
    FERRY,
    TOOLS,
    LabRig,
    new_lab,
    running,
    tasks,
    wait_doctor_clean,
    wait_until,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3, clients=1) as rig:
        rig.form_swarm()
        yield rig


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


def test_a_global_service_with_a_host_port_settles_after_a_worker_was_away(lab: LabRig) -> None:
    """Input 4: one new task on the returned node, 3/3, and no churn of task records."""
    lab.ferry("h1", "service", "create", "-q", "--name", "g", "--mode", "global", "--publish",
              "published=9003,target=80,mode=host", *SERVE)  # fmt: skip
    labmod.stop_ferryd(lab.topo, "h3", kill=True)
    wait_until(lambda: lab.node_state("h3") == "down", DOWN_WITHIN_S, "h3 down", every_s=0.5)
    labmod.start_ferryd(lab.topo, "h3")
    wait_until(lambda: len(running(lab, "g")) == 3, 30, "g 3/3", every_s=0.5)
    count = len(tasks(lab, "g"))
    time.sleep(3)
    assert len(tasks(lab, "g")) == count <= 5  # 3 running, the orphaned one, no churn
    wait_doctor_clean(lab, 10)
    remove_services(lab, "g")
