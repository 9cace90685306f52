"""Issue 12: ``ferry stack deploy|ls|services|ps|rm`` — a compose file read by the docker CLI's
loader, deployed as ``docker stack deploy`` deploys it, seen by the docker CLI, removed whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.lab.apps import WHOAMI
from ferry.model.stack import LABEL_NAMESPACE
from tests.integration.lablib import (
    TOOLS,
    LabRig,
    new_lab,
    running,
    wait_for_value,
    wait_until,
)

SECRET = "correct horse battery staple\n"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=2) as rig:
        rig.form_swarm()
        yield rig


def compose_file(tmp_path: Path) -> Path:
    """web (2 replicas, port 8080 published), app (on both networks), db (a secret, read from
    /run/secrets and served on 5432); ``${GREETING}`` is interpolated by the loader."""
    model: dict[str, Any] = {
        "version": "3.8",
        "services": {
            "web": {
                "image": TOOLS, "command": ["python3", "-c", WHOAMI], "ports": ["8080:80"],
                "networks": ["front"], "deploy": {"replicas": 2},
            },
            "app": {
                "image": TOOLS, "command": ["sleep", "3600"], "networks": ["front", "back"],
                "environment": {"GREETING": "${GREETING}"},
            },
            "db": {
                "image": TOOLS, "networks": ["back"], "secrets": ["db_password"],
                "command": ["sh", "-c", "cp /run/secrets/db_password /srv/pw && "
                            "exec python3 -m http.server -d /srv 5432"],
            },
        },
        "networks": {"front": {}, "back": {}},
        "secrets": {"db_password": {"file": "./db_password.txt"}},
    }  # fmt: skip
    (tmp_path / "db_password.txt").write_text(SECRET)
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump(model))
    return path


def node_of(lab: LabRig, task: dict[str, Any]) -> str:
    return next(h for h, n in lab.nodes().items() if n["ID"] == task["NodeID"])


def in_app(lab: LabRig, *cmd: str) -> str | None:
    """A command's output inside the stack's app container (on whichever node runs it); None
    while app has not one running task (an update replaces it) or when the command fails (a
    server that has not begun to listen yet)."""
    live = running(lab, "stk_app")
    if len(live) != 1:
        return None
    cid = live[0]["Status"]["ContainerStatus"]["ContainerID"]
    done = lab.ferry(node_of(lab, live[0]), "exec", cid, *cmd, check=False)
    return done.stdout if done.returncode == 0 else None


def answers(lab: LabRig, url: str, tries: int) -> set[str]:
    """The distinct bodies of ``tries`` requests from app (failed ones left out)."""
    got = {in_app(lab, "curl", "-s", "-m", "5", url) for _ in range(tries)}
    return {a for a in got if a}


def stack_objects(lab: LabRig, kind: str, stack: str = "stk") -> list[str]:
    found = lab.api("h1", f"/{kind}", filters={"label": [f"{LABEL_NAMESPACE}={stack}"]})
    return sorted(str(o.get("Spec", o).get("Name") or o.get("Name")) for o in found)


def test_ferry_stack_deploy_runs_three_services_updates_in_place_and_rm_removes_all(
    lab: LabRig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = compose_file(tmp_path)
    monkeypatch.setenv("GREETING", "hello")
    try:
        deployed = lab.ferry("h1", "stack", "deploy", "--detach=false", "-c", str(compose), "stk")
        for line in ("Creating network stk_front", "Creating network stk_back",
                     "Creating secret stk_db_password", "Creating service stk_web"):  # fmt: skip
            assert line in deployed.stdout
        for name, count in (("stk_web", 2), ("stk_app", 1), ("stk_db", 1)):
            wait_until(lambda n=name, c=count: len(running(lab, n)) == c, 60, f"{name} {count}")
        # by name inside the stack (db serves the secret it read), and through the routing
        # mesh of the node app is not on: each replica answers with its hostname
        db = "http://db:5432/pw"
        wait_for_value(lambda: answers(lab, db, 1), {SECRET}, 60, "the secret from db by name")
        [app] = running(lab, "stk_app")
        other = lab.topo.node("h2" if node_of(lab, app) == "h1" else "h1").addr
        mesh = f"http://{other}:8080/"

        def both_replicas() -> set[str] | None:
            got = answers(lab, mesh, 4)
            return got if len(got) == 2 else None

        both = wait_until(both_replicas, 60, "both replicas of web on the published port")
        by_name = wait_until(lambda: answers(lab, "http://web/", 4), 60, "web by name")
        assert by_name <= both
        assert "GREETING=hello" in (in_app(lab, "env") or "")
        # the docker CLI sees Ferry's stack
        assert lab.exec("h1", "docker", "stack", "ls").stdout.split()[-2:] == ["stk", "3"]
        listed = lab.exec("h1", "docker", "stack", "services", "stk", "--format", "{{.Name}}")
        assert listed.stdout.split() == ["stk_app", "stk_db", "stk_web"]
        assert lab.ferry("h1", "stack", "ls").stdout.split() == ["NAME", "SERVICES", "stk", "3"]
        ps = lab.ferry("h1", "stack", "ps", "stk", "--format", "{{.Name}}").stdout.split()
        assert sorted(n.rsplit(".", 1)[0] for n in ps) == [
            "stk_app", "stk_db", "stk_web", "stk_web",
        ]  # fmt: skip
        missing = lab.ferry("h1", "stack", "ps", "nostack", check=False)
        assert (missing.returncode, missing.stderr) == (
            3,
            "Error: nothing found in stack: nostack\n",
        )

        # a redeploy with a change updates the services in place
        before = {s["Spec"]["Name"]: s["ID"] for s in lab.api("h1", "/services")}
        monkeypatch.setenv("GREETING", "bonjour")
        again = lab.ferry("h1", "stack", "deploy", "-c", str(compose), "stk").stdout
        assert f"Updating service stk_app (id: {before['stk_app']})" in again
        assert "Creating" not in again
        after = {s["Spec"]["Name"]: s["ID"] for s in lab.api("h1", "/services")}
        assert after == before
        wait_until(lambda: "GREETING=bonjour" in (in_app(lab, "env") or ""), 60, "app updated")
    finally:
        removed = lab.ferry("h1", "stack", "rm", "stk", check=False)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines() == [
        "Removing service stk_app", "Removing service stk_db", "Removing service stk_web",
        "Removing secret stk_db_password",
        "Removing network stk_back", "Removing network stk_front",
    ]  # fmt: skip
    for kind in ("services", "networks", "secrets"):
        assert stack_objects(lab, kind) == [], kind


def test_either_cli_sees_updates_and_removes_the_others_stack(lab: LabRig, tmp_path: Path) -> None:
    def write(replicas: int) -> str:
        probe = {"image": TOOLS, "command": ["sleep", "600"], "deploy": {"replicas": replicas}}
        model = {"version": "3.8", "services": {"probe": probe}}
        (tmp_path / "probe.yml").write_text(yaml.safe_dump(model))
        return str(tmp_path / "probe.yml")

    lab.exec("h1", "docker", "stack", "deploy", "-c", write(1), "dk")
    try:
        listed = lab.ferry("h1", "stack", "services", "dk", "--format", "{{.Name}}").stdout
        assert listed.split() == ["dk_probe"]
        [short_id] = lab.ferry("h1", "stack", "services", "-q", "dk").stdout.split()
        assert len(short_id) == 12  # as docker stack services -q prints it
        svc_id = lab.api("h1", "/services/dk_probe")["ID"]
        updated = lab.ferry("h1", "stack", "deploy", "-c", write(2), "dk").stdout
        assert updated.splitlines() == [f"Updating service dk_probe (id: {svc_id})"]
        wait_until(lambda: len(running(lab, "dk_probe")) == 2, 60, "dk_probe 2/2")
        tasks = "{{.ID}} {{.Name}} {{.Image}} {{.Node}} {{.DesiredState}} {{.Error}}"
        for verb in (("ls",), ("services", "dk"), ("services", "-q", "dk"), ("ps", "-q", "dk"),
                     ("ps", "dk", "--format", tasks)):  # fmt: skip
            ours = lab.ferry("h1", "stack", *verb).stdout
            # word for word: Docker pads a column to at least 10 (its tabwriter's minwidth),
            # Ferry's tables (cli/common.print_table) to the widest cell
            assert ours.split() == lab.exec("h1", "docker", "stack", *verb).stdout.split(), verb
    finally:
        removed = lab.ferry("h1", "stack", "rm", "dk", check=False)
    assert removed.stdout.splitlines() == [
        "Removing service dk_probe",
        "Removing network dk_default",
    ]
    assert lab.ferry("h1", "stack", "ls").stdout.split() == ["NAME", "SERVICES"]

    lab.ferry("h1", "stack", "deploy", "-c", write(1), "fy")
    lab.exec("h1", "docker", "stack", "rm", "fy")
    for kind in ("services", "networks"):
        assert stack_objects(lab, kind, "fy") == [], kind
