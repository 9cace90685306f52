"""What a worker is told, and what answers for a service's name.

A worker's session stream carries the container template (env, command, credentials…) only of
the tasks assigned to it, also one assigned later; every other service and task reaches it as
its data plane needs it, and still works from there (VIP, DNS). A local container that holds a
service's name never answers next to the service's VIP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.lablib import TOOLS, LabRig, new_lab, probe, running, wait_until

pytestmark = pytest.mark.integration

SERVE = (TOOLS, "python3", "-m", "http.server", "80")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    """h1 manager, h2 and h3 workers; an attachable overlay ``mnet``."""
    with new_lab(hosts=3) as rig:
        rig.form_swarm()
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "mnet")
        yield rig


def snapshot(lab: LabRig, host: str) -> str:
    """The snapshot that opens ``host``'s session stream, asked for with its own certificate
    (as ``curl --cert node.pem`` would), as JSON text."""
    certs = lab.topo.node(host).state_dir / "certs"
    lines = probe(lab, host, "session_snapshot.py", str(certs), lab.topo.node("h1").addr)
    assert lines[0]["t"] == "snapshot"
    return json.dumps(lines[0])


def task_container(lab: LabRig, host: str, service: str) -> str:
    """The name of ``service``'s running task container on ``host``."""

    def find() -> str | None:
        for c in lab.api(host, "/containers/json"):
            name = str(c["Names"][0]).lstrip("/")
            if name.startswith(f"{service}.") and c["State"] == "running":
                return name
        return None

    return wait_until(find, 60, f"a running task of {service} on {host}")


def service_create(lab: LabRig, name: str, *args: str) -> None:
    lab.ferry("h1", "service", "create", "-d", "--name", name, *args)


def test_a_worker_is_told_the_templates_of_its_own_tasks_only(lab: LabRig) -> None:
    service_create(lab, "secretsvc", "-e", "DB_PASSWORD=hunter2", "--network", "mnet",
                   "--constraint", "node.hostname==h1", *SERVE)  # fmt: skip
    service_create(lab, "mine", "-e", "APP_TOKEN=s3cr3t-h3", "--network", "mnet",
                   "--constraint", "node.hostname==h3", TOOLS, "sleep", "600")  # fmt: skip
    service_create(lab, "later", "--replicas", "0", "-e", "LATE=yes-h3", "--network", "mnet",
                   "--constraint", "node.hostname==h3", TOOLS, "sleep", "600")  # fmt: skip
    wait_until(lambda: running(lab, "secretsvc") and running(lab, "mine"), 60, "both running")
    told = snapshot(lab, "h3")
    items: dict[str, Any] = {i["k"]: i["v"] for i in json.loads(told)["items"]}
    names = {v["spec"]["name"] for k, v in items.items() if "/services/" in k}
    assert {"secretsvc", "mine", "later"} <= names  # every service, for its name and VIP
    assert "hunter2" not in told and "DB_PASSWORD" not in told
    assert "yes-h3" not in told  # no task of 'later' on h3 yet
    assert "s3cr3t-h3" in told  # its own task's template
    assert "hunter2" in snapshot(lab, "h1")  # a manager holds the store anyway
    # the task on h3 runs with its env, and reaches the other service by name and VIP
    mine = task_container(lab, "h3", "mine")
    assert lab.ferry("h3", "exec", mine, "printenv", "APP_TOKEN").stdout.strip() == "s3cr3t-h3"
    resolve = "import socket;print(socket.gethostbyname_ex('secretsvc')[2])"
    vip = lab.ferry("h3", "exec", mine, "python3", "-c", resolve).stdout
    assert re.fullmatch(r"\['10\.\d+\.\d+\.\d+'\]\n", vip), vip

    def served() -> bool:
        out = lab.ferry("h3", "exec", mine, "curl", "-s", "-m", "3", "-o", "/dev/null",
                        "-w", "%{http_code}", "http://secretsvc/", check=False)  # fmt: skip
        return out.stdout == "200"

    wait_until(served, 30, "secretsvc answering through its VIP from h3")
    # a task assigned to h3 later brings its template with it; the others' stay away
    lab.ferry("h1", "service", "scale", "-d", "later=1")
    late = task_container(lab, "h3", "later")
    assert lab.ferry("h3", "exec", late, "printenv", "LATE").stdout.strip() == "yes-h3"
    told = snapshot(lab, "h3")
    assert "yes-h3" in told and "hunter2" not in told
    assert "s3cr3t-h3" not in snapshot(lab, "h2") and "yes-h3" not in snapshot(lab, "h2")


def test_a_local_container_never_answers_next_to_a_services_vip(lab: LabRig) -> None:
    # made before the service: no manager sees a container on h2's own bridge
    lab.ferry("h2", "run", "-d", "--name", "web", TOOLS, "sleep", "600")
    service_create(lab, "web", "--network", "mnet", TOOLS, "sleep", "600")
    lab.ferry("h2", "run", "-d", "--name", "xb", "--network", "mnet", TOOLS, "sleep", "600")
    lab.ferry("h2", "network", "connect", "bridge", "xb")
    resolve = ("python3", "-c", "import socket;print(socket.gethostbyname_ex('web')[2])")
    answer = lab.ferry("h2", "exec", "xb", *resolve).stdout
    assert re.fullmatch(r"\['10\.\d+\.\d+\.\d+'\]\n", answer), answer  # the VIP alone
    # and no new one takes the name: on a local network either, nor by alias or rename
    refusals = [
        ("run", "-d", "--name", "web", TOOLS, "sleep", "60"),
        ("run", "-d", "--name", "zb", "--hostname", "web", TOOLS, "sleep", "60"),
        ("network", "connect", "--alias", "web", "bridge", "yb"),
        ("rename", "yb", "web"),
    ]
    lab.ferry("h3", "run", "-d", "--name", "yb", "--network", "mnet", TOOLS, "sleep", "600")
    for args in refusals:
        result = lab.ferry("h3", *args, check=False)
        assert result.returncode == 5, (args, result)
        assert "belongs to service web: service and container names share the DNS namespace" in (
            result.stderr
        )
    names = [c["Names"][0] for c in lab.api("h3", "/containers/json", all=1)]
    assert "/web" not in names and "/zb" not in names and "/yb" in names
