"""Issue 4: services through the docker CLI and docker-py (secrets and configs, update configs
and rollbacks, events and filters, network aliases, docker stack), on a lab like
test_services.py's: three hosts, the overlay svcnet and a container ``client`` on it.
"""

from __future__ import annotations

import base64
import collections
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from ferry.manager.store import keys
from tests.integration.lablib import TOOLS, LabRig, new_lab, running, wait_until


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3) as rig:
        rig.form_swarm()
        rig.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "svcnet")
        rig.ferry(
            "h1", "run", "-d", "--network", "svcnet", "--name", "client", TOOLS, "sleep", "3600"
        )
        yield rig


def test_the_docker_cli_drives_services(lab: LabRig) -> None:
    lab.exec("h1", "docker", "service", "create", "--name", "dweb", "--network", "svcnet",
             "--replicas", "2", TOOLS, "sleep", "600")  # fmt: skip
    assert "2/2" in lab.exec("h1", "docker", "service", "ls").stdout
    lab.exec("h1", "docker", "service", "scale", "dweb=3")
    assert lab.exec("h1", "docker", "service", "ps", "dweb").stdout.count("Running") >= 3
    inspect = lab.exec("h1", "docker", "service", "inspect", "dweb", "--format",
                       "{{.Spec.Mode.Replicated.Replicas}}").stdout  # fmt: skip
    assert inspect.strip() == "3"
    lab.exec("h1", "docker", "service", "update", "--label-add", "tier=front", "dweb")
    labels = lab.exec("h1", "docker", "service", "inspect", "dweb", "--format",
                      "{{json .Spec.Labels}}").stdout  # fmt: skip
    assert labels.strip() == '{"tier":"front"}'
    # what Ferry does not honour is refused by name, through create and update alike; the
    # defaults the docker CLI sends with any update flag pass, and update sends them back
    refused = lab.exec("h1", "docker", "service", "create", "-d", "--name", "ds5",
                       "--restart-window", "10s", TOOLS, "sleep", "100", check=False)  # fmt: skip
    assert "Ferry does not support TaskTemplate.RestartPolicy.Window=10s" in refused.stderr, (
        refused.stderr
    )
    refused = lab.exec("h1", "docker", "service", "update", "-d", "--restart-max-attempts", "2",
                       "--placement-pref-add", "spread=node.labels.x", "dweb",
                       check=False)  # fmt: skip
    assert (
        "Ferry does not support TaskTemplate.Placement.Preferences, "
        "TaskTemplate.RestartPolicy.MaxAttempts=2"
    ) in refused.stderr, refused.stderr
    lab.exec("h1", "docker", "service", "update", "-d", "--update-parallelism", "2", "dweb")
    update = lab.exec("h1", "docker", "service", "inspect", "dweb", "--format",
                      "{{json .Spec.UpdateConfig}}").stdout  # fmt: skip
    assert '"FailureAction":"pause"' in update and '"Order":"stop-first"' in update, update
    assert '"Parallelism":2' in update, update
    lab.exec("h1", "docker", "service", "rm", "dweb")
    assert "dweb" not in lab.exec("h1", "docker", "service", "ls").stdout
    _docker_secrets_and_configs(lab)


def _docker_secrets_and_configs(lab: LabRig) -> None:
    """Secrets and configs through the docker CLI; a secret's data is nowhere in the store."""
    plain, conf = "pw-5f1d2c9a-plain", "listen 8080 # conf-77ab"
    secret_id = lab.exec("h1", "sh", "-c", f"printf %s {plain} | docker secret create -l a=b dsec -"
                         ).stdout.strip()  # fmt: skip
    listed = lab.exec("h1", "docker", "secret", "ls").stdout
    assert listed.split()[:5] == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"], listed
    assert [line.split()[:2] for line in listed.splitlines()[1:]] == [[secret_id, "dsec"]], listed
    shown = lab.exec("h1", "docker", "secret", "inspect", "dsec").stdout
    assert plain not in shown and '"a": "b"' in shown and '"Data"' not in shown, shown
    lab.exec("h1", "sh", "-c", f"printf %s '{conf}' | docker config create dconf -")
    assert conf in lab.exec("h1", "docker", "config", "inspect", "--pretty", "dconf").stdout
    _secrets_in_tasks(lab, plain, conf)
    files = lab.topo.node("h1").state_dir / "certs"
    store = lab.exec(
        "h1", "etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={files / 'store-ca.pem'}",
        f"--cert={files / 'store.pem'}", f"--key={files / 'store.key'}",
        "get", "--prefix", keys.ROOT,
    ).stdout  # fmt: skip
    assert keys.swarm_secret(secret_id) in store  # the store was read, and holds the secret
    assert base64.b64encode(conf.encode()).decode() in store  # a config is kept as it is
    assert plain not in store and base64.b64encode(plain.encode()).decode() not in store
    refused = lab.exec("h1", "docker", "secret", "rm", "dsec", check=False)
    assert "secret 'dsec' is in use by the following service: ds6" in refused.stderr, refused
    # the docker CLI's --secret-rm rolls the tasks over: the new ones have no such file
    lab.exec("h1", "docker", "service", "update", "--secret-rm", "dsec", "ds6")
    for node, cid in _task_containers(lab, "ds6"):
        gone = lab.ferry(node, "exec", cid, "ls", "/run/secrets/pw", check=False)
        assert gone.returncode != 0, gone
    lab.exec("h1", "docker", "secret", "rm", "dsec")
    lab.exec("h1", "docker", "service", "rm", "ds6")
    lab.exec("h1", "docker", "config", "rm", "dconf")
    wait_until(lambda: not _files_mounts(lab), 60, "no task's files tmpfs left mounted")
    assert "dsec" not in lab.exec("h1", "docker", "secret", "ls").stdout
    assert "dconf" not in lab.exec("h1", "docker", "config", "ls").stdout


def _task_containers(lab: LabRig, service: str) -> list[tuple[str, str]]:
    """(lab host, container id) of each running task of ``service``."""
    hosts = {n["ID"]: h for h, n in lab.nodes().items()}
    return [(hosts[t["NodeID"]], t["Status"]["ContainerStatus"]["ContainerID"])
            for t in running(lab, service)]  # fmt: skip


def _files_mounts(lab: LabRig) -> dict[str, int]:
    """Per lab host, how many tasks' files tmpfs are mounted under its state directory."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    out: dict[str, int] = {}
    for host in lab.nodes():
        root = f"{lab.topo.node(host).state_dir}/containers/"
        count = sum(1 for p in points if p.startswith(root) and p.endswith("/files"))
        if count:
            out[host] = count
    return out


def _secrets_in_tasks(lab: LabRig, plain: str, conf: str) -> None:
    """A service's secret and config are files in its tasks (Docker's paths, owner and mode),
    on a tmpfs of the task's node only, and nowhere in inspect or the environment."""
    lab.exec("h1", "docker", "service", "create", "-d", "--name", "ds6", "--replicas", "2",
             "--secret", "source=dsec,target=pw,uid=33,mode=0400",
             "--config", "source=dconf,target=/etc/app.conf", TOOLS, "sleep", "600")  # fmt: skip
    wait_until(lambda: len(running(lab, "ds6")) == 2, 60, "2 tasks of ds6 running")
    tasks = _task_containers(lab, "ds6")
    for node, cid in tasks:
        script = "cat /run/secrets/pw; echo; stat -c '%a %u' /run/secrets/pw; cat /etc/app.conf"
        seen = lab.ferry(node, "exec", cid, "sh", "-c", script).stdout.splitlines()
        assert seen == [plain, "400 33", conf], seen
        assert plain not in lab.ferry(node, "exec", cid, "env").stdout
        assert plain not in lab.exec(node, "docker", "inspect", cid).stdout
        # read-only in the task, even for root
        wrote = lab.ferry(node, "exec", cid, "sh", "-c", "echo x > /run/secrets/pw", check=False)
        assert wrote.returncode != 0
    shown = lab.exec("h1", "docker", "service", "inspect", "ds6").stdout
    assert '"SecretName": "dsec"' in shown and plain not in shown, shown
    # only the nodes running a task hold the files, each on a tmpfs of its own
    assert _files_mounts(lab) == collections.Counter(node for node, _ in tasks)


def _service_env(lab: LabRig, name: str) -> str:
    return lab.exec("h1", "docker", "service", "inspect", name, "--format",
                    "{{json .Spec.TaskTemplate.ContainerSpec.Env}}").stdout.strip()  # fmt: skip


def test_docker_py_drives_ferryd_and_the_docker_cli_rolls_a_service_back(lab: LabRig) -> None:
    # docker-py over h1's ferryd socket (a file, not a lab address)
    client = docker.DockerClient(base_url=lab.socket("h1"), version="1.47")
    try:
        # its ServiceMode sends {"replicated": {"Replicas": 2}}: Go's decoder ignores case
        mode = docker.types.ServiceMode("replicated", replicas=2)
        svc = client.services.create(
            TOOLS, ["sleep", "600"], name="pyweb", mode=mode, networks=["svcnet"]
        )
        wait_until(lambda: len(running(lab, "pyweb")) == 2, 60, "2 tasks of pyweb running")
        svc.scale(3)
        wait_until(lambda: len(running(lab, "pyweb")) == 3, 60, "3 tasks of pyweb running")
        # attached run reads the output back (LogConfig json-file); network inspect lists this
        # node's containers by id, each one docker-py can get
        assert client.containers.run(TOOLS, ["echo", "hi"], remove=True) == b"hi\n"
        here = client.networks.get("svcnet").containers
        assert "client" in {c.name for c in here}
        # rollback through the real docker CLI: the previous spec comes back, then returns
        lab.exec("h1", "docker", "service", "update", "--env-add", "V=2", "pyweb")
        back = lab.exec("h1", "docker", "service", "rollback", "pyweb")
        said = back.stdout + back.stderr
        assert "rollback: manually requested rollback" in said, said
        assert "verify: Service pyweb converged" in said, said  # this CLI names it
        assert _service_env(lab, "pyweb") == "[]"
        previous = lab.exec("h1", "docker", "service", "inspect", "pyweb", "--format",
                            "{{json .PreviousSpec.TaskTemplate.ContainerSpec.Env}}")  # fmt: skip
        assert previous.stdout.strip() == '["V=2"]'
        assert [t["Spec"]["ContainerSpec"]["Env"] for t in running(lab, "pyweb")] == [[]] * 3
        lab.exec("h1", "docker", "service", "update", "--rollback", "pyweb")
        assert _service_env(lab, "pyweb") == '["V=2"]'
    finally:
        client.close()
        lab.exec("h1", "docker", "service", "rm", "pyweb", check=False)


def _update_status(lab: LabRig, name: str) -> tuple[str, str]:
    shown = lab.exec("h1", "docker", "service", "inspect", name, "--format",
                     "{{if .UpdateStatus}}{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}"
                     "{{end}}").stdout.strip()  # fmt: skip
    state, _, message = shown.partition("|")
    return state, message


def test_update_config_is_honoured_and_a_failed_update_rolls_back(lab: LabRig) -> None:
    """The docker CLI's --update-* flags: shown back by inspect, a start-first roll-over in
    batches of 2 that converges, then an update whose tasks fail rolls itself back
    (--update-failure-action rollback) to the spec that ran."""
    lab.exec("h1", "docker", "service", "create", "--name", "roll", "--replicas", "3",
             "--update-parallelism", "2", "--update-order", "start-first",
             "--update-delay", "1s", TOOLS, "sleep", "600")  # fmt: skip
    try:
        config = lab.exec("h1", "docker", "service", "inspect", "roll", "--format",
                          "{{json .Spec.UpdateConfig}}").stdout  # fmt: skip
        assert '"Parallelism":2' in config and '"Order":"start-first"' in config, config
        assert '"Delay":1000000000' in config, config
        lab.exec("h1", "docker", "service", "update", "--env-add", "V=2", "roll")
        assert [t["Spec"]["ContainerSpec"]["Env"] for t in running(lab, "roll")] == [["V=2"]] * 3
        assert _update_status(lab, "roll") == ("completed", "update completed")
        # tasks that cannot start: the update rolls back to the spec that ran; start-first
        # kept the old tasks running, and the rollback keeps them (their spec is the same)
        before = sorted(t["ID"] for t in running(lab, "roll"))
        lab.exec("h1", "docker", "service", "update", "-d", "--update-failure-action",
                 "rollback", "--args", "/nonexistent", "roll")  # fmt: skip
        wait_until(lambda: _update_status(lab, "roll")[0] == "rollback_completed"
                   and len(running(lab, "roll")) == 3, 90, "rolled back")  # fmt: skip
        back = running(lab, "roll")
        assert sorted(t["ID"] for t in back) == before
        assert all(t["Spec"]["ContainerSpec"]["Args"] == ["sleep", "600"] for t in back), back
        events = lab.exec(
            "h1",
            "docker",
            "service",
            "inspect",
            "roll",
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Args}}",
        ).stdout.strip()
        assert events == '["sleep","600"]'
    finally:
        lab.exec("h1", "docker", "service", "rm", "roll", check=False)


def test_docker_events_and_ps_filters_through_the_docker_cli(lab: LabRig) -> None:
    since = int(time.time()) - 1
    lab.exec("h1", "docker", "run", "-d", "--name", "evt", "--label", "probe=events", TOOLS,
             "sh", "-c", "exit 3")  # fmt: skip
    assert lab.exec("h1", "docker", "wait", "evt").stdout.strip() == "3"
    listed = lab.exec("h1", "docker", "ps", "-a", "--format", "{{.Names}}", "--filter",
                      "label=probe=events", "--filter", "exited=3").stdout  # fmt: skip
    assert listed.split() == ["evt"]
    refused = lab.exec("h1", "docker", "ps", "--filter", "colour=red", check=False)
    assert "invalid filter 'colour'" in refused.stderr, refused.stderr
    lab.exec("h1", "docker", "rm", "evt")
    lab.exec("h1", "docker", "service", "create", "-d", "--name", "evsvc", "--label", "k=v",
             TOOLS, "sleep", "600")  # fmt: skip
    svcs = lab.exec("h1", "docker", "service", "ls", "--format", "{{.Name}}",
                    "--filter", "label=k=v", "--filter", "name=evs").stdout  # fmt: skip
    assert svcs.split() == ["evsvc"]
    lab.exec("h1", "docker", "service", "rm", "evsvc")
    until = int(time.time()) + 1  # the CLI waits until then: everything above is in the history
    swarm_events = lab.exec("h1", "docker", "events", "--since", str(since), "--until",
                            str(until), "--filter", "type=service", "--format",
                            "{{.Action}} {{.Actor.Attributes.name}}").stdout  # fmt: skip
    # other tests' services may have events within the second before ``since``
    mine = [line for line in swarm_events.splitlines() if line.endswith(" evsvc")]
    assert mine == ["create evsvc", "remove evsvc"], swarm_events
    shape = '{{.Type}} {{.Action}} {{index .Actor.Attributes "exitCode"}}'
    out = lab.exec("h1", "docker", "events", "--since", str(since), "--until", str(until),
                   "--filter", "container=evt", "--format", shape).stdout  # fmt: skip
    lines = [line.split() for line in out.splitlines()]
    assert [line[:2] for line in lines] == [
        ["container", "create"], ["container", "start"], ["container", "die"],
        ["container", "destroy"],
    ], out  # fmt: skip
    assert lines[2][2] == "3", out


def test_a_services_network_alias_names_its_vip_there(lab: LabRig) -> None:
    """What docker stack deploy asks for each service: its short name as an alias."""
    lab.exec("h1", "docker", "service", "create", "-d", "--name", "stk_api", "--network",
             "name=svcnet,alias=api", TOOLS, "sleep", "600")  # fmt: skip
    try:
        shown = lab.exec("h1", "docker", "service", "inspect", "--format",
                         "{{json .Spec.TaskTemplate.Networks}}", "stk_api").stdout  # fmt: skip
        assert '"Aliases":["api"]' in shown, shown
        vip = lab.api("h1", "/services/stk_api")["Endpoint"]["VirtualIPs"][0]["Addr"]
        answer = lab.ferry("h1", "exec", "client", "getent", "hosts", "api").stdout
        assert answer.split()[0] == vip.split("/")[0], answer
        taken = lab.ferry("h1", "run", "-d", "--network", "svcnet", "--network-alias", "api",
                          TOOLS, "true", check=False)  # fmt: skip
        assert "belongs to service stk_api" in taken.stderr, taken.stderr
        # --network-add and --network-rm (the spec names networks by id, as Docker's: the
        # CLI's --network-rm finds it): the VIPs move, the tasks roll over to the new set
        lab.ferry("h1", "network", "create", "-d", "overlay", "--attachable", "svcnet2")
        lab.exec("h1", "docker", "service", "update", "--network-add", "svcnet2", "stk_api")
        vips = lab.api("h1", "/services/stk_api")["Endpoint"]["VirtualIPs"]
        assert len(vips) == 2, vips
        [task] = running(lab, "stk_api")
        assert len(task["NetworksAttachments"]) == 2, task
        lab.exec("h1", "docker", "service", "update", "--network-rm", "svcnet", "stk_api")
        [task] = running(lab, "stk_api")
        assert len(task["NetworksAttachments"]) == 1, task
        gone = lab.ferry("h1", "exec", "client", "getent", "hosts", "api", check=False)
        assert gone.returncode != 0, gone  # the alias was the VIP's on svcnet, now released
    finally:
        lab.ferry("h1", "service", "rm", "stk_api", check=False)
        lab.ferry("h1", "network", "rm", "svcnet2", check=False)


STACK = """\
version: "3.8"
services:
  web:
    image: tools
    command: ["python3", "-m", "http.server", "80"]
    environment:
      - TIER=${TIER}
    networks: [front]
    ports: ["8088:80"]
    deploy:
      replicas: 2
  probe:
    image: tools
    command: ["sleep", "600"]
    networks: [front, back]
  db:
    image: tools
    command: ["sleep", "600"]
    networks: [back]
    secrets:
      - source: db_password
        target: db.pw
        mode: 0400
networks:
  front:
    driver: overlay
  back:
    driver: overlay
secrets:
  db_password:
    file: ./db_password.txt
"""
DB_PASSWORD = "stack-db-pw-93c1e7"


def _web_tier(lab: LabRig) -> list[list[str]]:
    return [t["Spec"]["ContainerSpec"]["Env"] for t in running(lab, "stk_web")]


def test_docker_stack_deploy_runs_a_compose_file_and_stack_rm_removes_it(
    lab: LabRig, tmp_path: Path
) -> None:
    """Issue 12's stack: web (a published port, 2 replicas), an app and a db with a secret,
    deployed with the docker CLI, reached by name and through the mesh, updated, rolled back
    and removed."""
    compose = tmp_path / "compose.yml"
    compose.write_text(STACK)
    (tmp_path / "db_password.txt").write_text(DB_PASSWORD)
    deploy = ["env", "TIER=a", "docker", "stack", "deploy", "-c", str(compose), "stk"]
    lab.exec("h1", *deploy)
    try:
        assert lab.exec("h1", "docker", "stack", "ls").stdout.split()[-2:] == ["stk", "3"]
        wait_until(lambda: len(running(lab, "stk_web")) == 2, 60, "stk_web 2/2", every_s=0.5)
        wait_until(lambda: len(running(lab, "stk_probe")) == 1, 60, "stk_probe 1/1", every_s=0.5)
        wait_until(lambda: len(running(lab, "stk_db")) == 1, 60, "stk_db 1/1", every_s=0.5)
        listed = lab.exec("h1", "docker", "stack", "ps", "stk", "--format", "{{.Name}}").stdout
        assert sorted(n.rsplit(".", 1)[0] for n in listed.split()) == [
            "stk_db", "stk_probe", "stk_web", "stk_web",
        ]  # fmt: skip
        [(node, cid)] = _task_containers(lab, "stk_probe")
        # inside the stack, a service's short name is its VIP
        answer = lab.ferry(node, "exec", cid, "curl", "-s", "-o", "/dev/null", "-w",
                           "%{http_code}", "http://web/").stdout  # fmt: skip
        assert answer == "200"
        # through the routing mesh, from another host, on any node's address
        for host in ("h1", "h2", "h3"):
            addr = lab.topo.node(host).addr
            code = lab.exec("h2", "curl", "-s", "-m", "5", "-o", "/dev/null", "-w",
                            "%{http_code}", f"http://{addr}:8088/").stdout  # fmt: skip
            assert code == "200", (host, code)
        # the db's secret: the stack's file, as a file in the db's task only
        [(db_node, db_cid)] = _task_containers(lab, "stk_db")
        read = lab.ferry(db_node, "exec", db_cid, "cat", "/run/secrets/db.pw").stdout
        assert read == DB_PASSWORD
        assert lab.ferry(node, "exec", cid, "ls", "/run/secrets", check=False).returncode != 0
        # updated in place by deploying again, then rolled back
        lab.exec("h1", *[a.replace("TIER=a", "TIER=b") for a in deploy])
        wait_until(lambda: _web_tier(lab) == [["TIER=b"]] * 2, 90, "web at TIER=b")
        lab.exec("h1", "docker", "service", "rollback", "stk_web")
        wait_until(lambda: _web_tier(lab) == [["TIER=a"]] * 2, 90, "web back at TIER=a")
    finally:
        lab.exec("h1", "docker", "stack", "rm", "stk", check=False)
    wait_until(lambda: "stk_db_password" not in lab.exec("h1", "docker", "secret", "ls").stdout,
               30, "the stack's secret removed")  # fmt: skip
    networks = lab.exec("h1", "docker", "network", "ls", "--format", "{{.Name}}").stdout
    assert "stk_front" not in networks.split()
