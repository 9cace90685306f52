"""A service's run options reach its tasks' containers, and health checks decide when a task
runs: healthy ones run (and only then), unhealthy ones are replaced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.lablib import TOOLS, LabRig, new_lab, wait_until


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        rig.ferry("h1", "swarm", "init", "--advertise-addr", rig.topo.node("h1").addr)
        yield rig


def task_container(lab: LabRig, service: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for c in lab.api("h1", "/containers/json"):
            if c["Labels"].get("com.docker.swarm.service.name") == service:
                return dict(lab.api("h1", f"/containers/{c['Id']}/json"))
        return None

    return wait_until(found, 30, f"a running task of {service}")


def test_options_reach_the_tasks_container(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "--name", "opts", "--user", "1000", "--workdir", "/tmp",
              "--mount", "type=volume,source=svcdata,target=/data", "--read-only",
              "--cap-drop", "NET_RAW", "--limit-memory", "64m", "--limit-cpu", "0.5",
              "--reserve-memory", "32m", TOOLS, "sleep", "600")  # fmt: skip
    try:
        info = task_container(lab, "opts")
        name = info["Name"].lstrip("/")
        assert lab.ferry("h1", "exec", name, "id", "-u").stdout.strip() == "1000"
        assert lab.ferry("h1", "exec", name, "pwd").stdout.strip() == "/tmp"
        limit = lab.ferry("h1", "exec", name, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert int(limit.stdout) == 64 << 20
        assert lab.ferry("h1", "exec", name, "touch", "/x", check=False).returncode != 0
        assert info["HostConfig"]["CapDrop"] == ["NET_RAW"]
        assert info["Mounts"][0]["Name"] == "svcdata"
        spec = lab.api("h1", "/services/opts")["Spec"]["TaskTemplate"]
        assert spec["ContainerSpec"]["User"] == "1000"
        assert spec["Resources"]["Reservations"]["MemoryBytes"] == 32 << 20
        # an update keeps what it does not change (the CLI sends the whole spec back)
        lab.ferry("h1", "service", "update", "--limit-memory", "96m", "opts")
        spec = lab.api("h1", "/services/opts")["Spec"]["TaskTemplate"]
        assert spec["ContainerSpec"]["User"] == "1000" and spec["ContainerSpec"]["ReadOnly"]
        assert spec["Resources"]["Limits"]["MemoryBytes"] == 96 << 20
    finally:
        lab.ferry("h1", "service", "rm", "opts", check=False)


def test_a_task_runs_only_once_healthy(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "-d", "--name", "slow", "--health-cmd",
              "test -e /tmp/ready", "--health-interval", "500ms", "--health-retries", "30", TOOLS,
              "sh", "-c",
              "sleep 3; touch /tmp/ready; sleep 600")  # fmt: skip
    try:

        def states() -> list[str]:
            return [t["Status"]["State"] for t in lab.api("h1", "/tasks")
                    if t["ServiceID"] == lab.api("h1", "/services/slow")["ID"]]  # fmt: skip

        wait_until(lambda: states() == ["starting"], 20, "the task to start, not yet healthy")
        info = task_container(lab, "slow")
        assert info["State"]["Health"]["Status"] in ("starting", "healthy")
        wait_until(lambda: states() == ["running"], 30, "the task to run once healthy")
        info = task_container(lab, "slow")
        assert info["State"]["Health"]["Status"] == "healthy"
    finally:
        lab.ferry("h1", "service", "rm", "slow", check=False)


def test_an_unhealthy_task_is_replaced(lab: LabRig) -> None:
    lab.ferry("h1", "service", "create", "-d", "--name", "sick", "--health-cmd", "false",
              "--health-interval", "300ms", "--health-retries", "2", TOOLS, "sleep",
              "600")  # fmt: skip
    try:
        svc_id = lab.api("h1", "/services/sick")["ID"]

        def failed() -> list[dict[str, Any]] | None:
            found = [t for t in lab.api("h1", "/tasks") if t["ServiceID"] == svc_id
                     and t["Status"]["State"] == "failed"]  # fmt: skip
            return found if len(found) >= 2 else None

        gone = wait_until(failed, 60, "two unhealthy tasks replaced")
        assert all("unhealthy" in task["Status"]["Err"] for task in gone)
    finally:
        lab.ferry("h1", "service", "rm", "sick", check=False)


def test_run_health_cmd_shows_in_ps_and_inspect(lab: LabRig) -> None:
    lab.ferry("h1", "run", "-d", "--name", "checked", "--health-cmd", "true",
              "--health-interval", "300ms", TOOLS, "sleep", "600")  # fmt: skip
    try:
        wait_until(
            lambda: "(healthy)" in lab.ferry("h1", "ps", "-f", "name=checked").stdout,
            20, "healthy in ps",
        )  # fmt: skip
        health = lab.api("h1", "/containers/checked/json")["State"]["Health"]
        assert health["Status"] == "healthy" and health["Log"][-1]["ExitCode"] == 0
    finally:
        lab.ferry("h1", "rm", "-f", "checked", check=False)
