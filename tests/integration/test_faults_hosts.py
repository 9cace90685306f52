"""Issue 8's fault suite, hosts: a whole host killed, and a worker cut off from the underlay
(see test_faults.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from ferry.kernel import nsfs, proc
from ferry.lab import lab as labmod
from tests.integration.faults_common import (
    node_id,
    remove_services,
)
from tests.integration.lablib import (
    DOWN_WITHIN_S,
    TOOLS,
    LabRig,
    new_lab,
    task_ids,
    wait_doctor_clean,
    wait_until,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3, clients=1) as rig:
        rig.form_swarm()
        yield rig


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
    wait_until(lambda: lab.node_state("h3") == "down", DOWN_WITHIN_S, "h3 down", every_s=0.5)
    wait_until(lambda: not resolves(), 3, "far gone from DNS on h2", every_s=0.2)
    inspect = lab.ferry("h1", "network", "inspect", "--verbose", "dnet").stdout
    assert '"far"' not in inspect
    wait_doctor_clean(lab, 10, down=("h3",))  # the others must be clean
    labmod.start_ferryd(lab.topo, "h3")
    wait_until(resolves, 10, "far back in DNS on h2", every_s=0.2)
    wait_doctor_clean(lab, 10)
    lab.ferry("h2", "rm", "-f", "asker")
    lab.ferry("h3", "rm", "-f", "far")


def test_a_dead_host_has_its_tasks_replaced_and_comes_back_clean(lab: LabRig) -> None:
    """A whole host dies (ferryd and its containers): its tasks run elsewhere once it is Down."""
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
        DOWN_WITHIN_S + 10,
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
        wait_until(lambda: lab.node_state("h2") == "down", DOWN_WITHIN_S, "h2 down", every_s=0.5)
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
