"""docker-py (PyPI ``docker``), scripted as its documentation shows, against ferryd: a scenario
per area of the Engine API (issue 12). The client talks to h1's ferryd socket, a file: no lab
address is touched from the root namespace. What Ferry does not serve is asserted as Docker's
error naming it."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.errors import APIError, ContainerError, NotFound
from docker.types import SecretReference, ServiceMode

from tests.integration.lablib import DOWN_WITHIN_S, TOOLS, LabRig, new_lab, wait_until


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=3) as rig:
        rig.form_swarm()
        yield rig


@pytest.fixture(scope="module")
def client(lab: LabRig) -> Iterator[docker.DockerClient]:
    # the way docker-py's README connects, with the socket of h1's ferryd as base_url
    api = docker.DockerClient(base_url=lab.socket("h1"), version="1.47", timeout=60)
    try:
        yield api
    finally:
        api.close()


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _untar(chunks: Iterator[bytes]) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _status(container: Any) -> str:
    container.reload()
    return str(container.status)


def test_containers_run_detached_and_attached_and_every_verb(client: docker.DockerClient) -> None:
    # attached: the output comes back as bytes, the container gone with remove=True
    assert client.containers.run(TOOLS, ["sh", "-c", "echo out; echo err >&2"]) == b"out\n"
    with pytest.raises(ContainerError) as failed:
        client.containers.run(TOOLS, ["sh", "-c", "echo bad >&2; exit 2"], remove=True)
    assert (failed.value.exit_status, failed.value.stderr) == (2, b"bad\n")
    box = client.containers.run(
        TOOLS, ["sleep", "600"], detach=True, name="pybox", labels={"suite": "dockerpy"}
    )
    try:
        wait_until(lambda: _status(box) == "running", 30, "pybox running")
        assert box.name == "pybox"
        assert box.labels == {"suite": "dockerpy"}
        assert client.containers.get("pybox").id == box.id
        # stats, one sample; top lists the sleep
        stats = box.stats(stream=False)
        assert stats["id"] == box.id
        assert stats["memory_stats"]["usage"] > 0
        top = box.top()
        assert "PID" in top["Titles"]
        assert any("sleep 600" in " ".join(p) for p in top["Processes"])
        # a file in, the same file out (put_archive/get_archive)
        assert box.put_archive("/tmp", _tar("hello.txt", b"from docker-py\n")) is True
        chunks, stat = box.get_archive("/tmp/hello.txt")
        assert stat["name"] == "hello.txt"
        assert stat["size"] == len(b"from docker-py\n")
        assert _untar(chunks) == {"hello.txt": b"from docker-py\n"}
        # rename, update
        box.rename("pybox2")
        box.reload()
        assert box.name == "pybox2"
        assert box.update(mem_limit="64m", restart_policy={"Name": "on-failure",
                          "MaximumRetryCount": 2}) == {"Warnings": []}  # fmt: skip
        box.reload()
        assert box.attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        assert box.attrs["HostConfig"]["RestartPolicy"] == {
            "Name": "on-failure",
            "MaximumRetryCount": 2,
        }
        # list with filters: by label, by name, by status
        listed = client.containers.list(filters={"label": "suite=dockerpy"})
        assert [c.id for c in listed] == [box.id]
        assert [c.name for c in client.containers.list(filters={"name": "pybox2"})] == ["pybox2"]
        assert client.containers.list(filters={"label": "suite=none"}) == []
        # kill, restart, stop; wait answers the exit status
        box.kill(signal="SIGKILL")
        assert box.wait(timeout=30)["StatusCode"] == 137
        assert _status(box) == "exited"
        exited = client.containers.list(all=True, filters={"status": "exited", "name": "pybox2"})
        assert [c.id for c in exited] == [box.id]
        box.restart(timeout=1)
        wait_until(lambda: _status(box) == "running", 30, "pybox2 running again")
        box.pause()
        assert _status(box) == "paused"
        box.unpause()
        assert _status(box) == "running"
        assert {"Path": "/tmp/hello.txt", "Kind": 1} in box.diff()
        with tarfile.open(fileobj=io.BytesIO(b"".join(box.export())), mode="r|") as tar:
            assert "tmp/hello.txt" in {m.name.lstrip("./") for m in tar}
        box.stop(timeout=1)
        assert _status(box) == "exited"
    finally:
        box.remove(force=True)
    with pytest.raises(NotFound):
        client.containers.get("pybox2")
    assert client.containers.list(all=True, filters={"label": "suite=dockerpy"}) == []
    # prune takes the stopped containers its filters name, and only those
    kept = client.containers.create(TOOLS, ["true"], name="pykept")
    gone = client.containers.create(TOOLS, ["true"], name="pygone", labels={"prune": "me"})
    try:
        pruned = client.containers.prune(filters={"label": "prune=me"})
        assert pruned["ContainersDeleted"] == [gone.id]
        assert client.containers.get("pykept").id == kept.id
    finally:
        kept.remove()


def test_containers_logs_and_wait_of_a_detached_run(client: docker.DockerClient) -> None:
    job = client.containers.run(
        TOOLS, ["sh", "-c", "echo one; echo two >&2; exit 3"], detach=True, name="pyjob"
    )
    try:
        assert job.wait(timeout=30) == {"StatusCode": 3, "Error": None}
        assert job.logs() == b"one\ntwo\n"
        assert job.logs(stderr=False) == b"one\n"
        assert job.logs(stdout=False) == b"two\n"
        assert job.logs(tail=1) == b"two\n"  # the last line of both streams, as Docker counts
        stamped = job.logs(timestamps=True, stderr=False).decode()
        assert stamped.endswith(" one\n") and stamped[:4].isdigit(), stamped
    finally:
        job.remove()


def test_health_checks_and_listing_by_health_since_and_before(
    client: docker.DockerClient,
) -> None:
    first = client.containers.create(TOOLS, ["true"], name="pyfirst")
    checked = client.containers.create(
        TOOLS,
        ["sleep", "600"],
        name="pyhealthy",
        healthcheck={"test": ["CMD", "true"], "interval": 500_000_000},  # docker-py's dict
    )
    last = client.containers.create(TOOLS, ["true"], name="pylast")
    try:
        assert checked.health == "unknown"  # no Health before the first start, as in Docker
        checked.start()
        wait_until(lambda: _health(checked) == "healthy", 30, "pyhealthy healthy")
        healthy = client.containers.list(filters={"health": "healthy"})
        assert [c.name for c in healthy] == ["pyhealthy"]
        between = client.containers.list(all=True, since="pyfirst", before="pylast")
        assert [c.name for c in between] == ["pyhealthy"]
        assert [c.name for c in client.containers.list(all=True, since="pyhealthy")] == ["pylast"]
    finally:
        for container in (first, checked, last):
            container.remove(force=True)


def _health(container: Any) -> str:
    container.reload()
    return str(container.health)


def test_exec_run_in_a_running_container(client: docker.DockerClient) -> None:
    box = client.containers.run(TOOLS, ["sleep", "600"], detach=True, name="pyexec")
    try:
        wait_until(lambda: _status(box) == "running", 30, "pyexec running")
        result = box.exec_run(["sh", "-c", "echo $GREETING; id -u; pwd"],
                              environment={"GREETING": "hello"}, workdir="/tmp")  # fmt: skip
        assert result.exit_code == 0
        assert result.output == b"hello\n0\n/tmp\n"
        failed = box.exec_run(["sh", "-c", "echo oops >&2; exit 4"])
        assert (failed.exit_code, failed.output) == (4, b"oops\n")
        split = box.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert split.output == (b"o\n", b"e\n")
        nobody = box.exec_run(["id", "-un"], user="nobody")
        assert nobody.output == b"nobody\n"
        # streamed through the socket, which is closed here: docker-py's stream=True generator
        # never closes its response, so its socket would be left to the garbage collector
        sock = box.exec_run(["sh", "-c", "echo a; echo b"], socket=True).output
        raw = getattr(sock, "_sock", sock)  # a SocketIO's socket: closing the SocketIO leaves it
        try:
            frames = docker.utils.socket.frames_iter(sock, tty=False)
            assert b"".join(data for _stream, data in frames) == b"a\nb\n"
        finally:
            sock.close()
            raw.close()
    finally:
        box.remove(force=True)


def test_images_list_get_tag_history_remove_and_pull(
    lab: LabRig, client: docker.DockerClient
) -> None:
    tools = client.images.get(TOOLS)
    assert "tools:latest" in tools.tags
    assert tools.id in {i.id for i in client.images.list()}
    assert [i.id for i in client.images.list(name=TOOLS)] == [tools.id]
    assert tools.tag("pytools", "v1") is True
    tagged = client.images.get("pytools:v1")
    assert tagged.id == tools.id
    assert {"tools:latest", "pytools:v1"} <= set(tagged.tags)
    assert [i.id for i in client.images.list(filters={"reference": "pytools"})] == [tools.id]
    history = tools.history()
    assert history and all("Created" in layer for layer in history)
    client.images.remove("pytools:v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("pytools:v1")
    assert "tools:latest" in client.images.get(TOOLS).tags
    # a pull from Docker Hub's name reaches the lab registry, every host's mirror
    pulled = client.images.pull("alpine", tag="latest")
    assert "alpine:latest" in pulled.tags
    assert pulled.attrs["Config"]["Cmd"] == ["/bin/sh"]
    also = client.images.pull(f"{lab.topo.registry_address}/library/alpine", tag="latest")
    assert also.id == pulled.id
    assert client.containers.run("alpine", ["echo", "from alpine"], remove=True) == (
        b"from alpine\n"
    )
    client.images.remove(f"{lab.topo.registry_address}/library/alpine:latest")
    # push to the lab registry, drop it here, pull it back: the same image
    pushed = f"{lab.topo.registry_address}/dockerpy/alpine"
    assert pulled.tag(pushed, "v1") is True
    progress = list(client.images.push(pushed, tag="v1", stream=True, decode=True))
    assert not [p for p in progress if "error" in p], progress
    assert progress[-1]["aux"]["Tag"] == "v1", progress
    client.images.remove(f"{pushed}:v1")
    assert client.images.pull(pushed, tag="v1").id == pulled.id
    client.images.remove(f"{pushed}:v1")
    # save and load: the archive docker-py reads back names the image
    archive = b"".join(pulled.save(named=True))
    client.images.remove("alpine:latest")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("alpine:latest")
    loaded = client.images.load(archive)
    assert [i.id for i in loaded] == [pulled.id]
    assert "alpine:latest" in loaded[0].tags
    client.images.remove("alpine:latest")


def test_networks_create_connect_disconnect_list_prune(client: docker.DockerClient) -> None:
    net = client.networks.create(
        "pynet", driver="overlay", attachable=True, labels={"suite": "dockerpy"}
    )
    pool = docker.types.IPAMPool(subnet="172.30.5.0/24", gateway="172.30.5.1")
    client.networks.create(
        "pybridge",
        driver="bridge",
        labels={"suite": "prune"},
        ipam=docker.types.IPAMConfig(pool_configs=[pool]),
    )
    box = client.containers.run(TOOLS, ["sleep", "600"], detach=True, name="pynetbox")
    try:
        assert client.networks.get(net.id).name == "pynet"
        assert client.networks.get("pynet").attrs["Driver"] == "overlay"
        assert client.networks.get("pynet").attrs["Labels"] == {"suite": "dockerpy"}
        listed = client.networks.list(filters={"label": "suite=dockerpy"})
        assert [n.name for n in listed] == ["pynet"]
        assert {n.name for n in client.networks.list(filters={"driver": "overlay"})} >= {
            "pynet",
            "ingress",
        }
        assert [n.name for n in client.networks.list(names=["pybridge"])] == ["pybridge"]
        net.connect(box, aliases=["pyalias"])
        net.reload()
        assert [c.id for c in net.containers] == [box.id]
        box.reload()
        assert "pyalias" in box.attrs["NetworkSettings"]["Networks"]["pynet"]["Aliases"]
        # the container reaches itself by its alias on the new network
        assert box.exec_run(["getent", "hosts", "pyalias"]).exit_code == 0
        net.disconnect(box)
        net.reload()
        assert net.containers == []
        bridge = client.networks.get("pybridge")
        assert bridge.attrs["IPAM"]["Config"] == [{"Subnet": "172.30.5.0/24",
                                                   "Gateway": "172.30.5.1"}]  # fmt: skip
        bridge.connect(box, ipv4_address="172.30.5.9")
        box.reload()
        assert box.attrs["NetworkSettings"]["Networks"]["pybridge"]["IPAddress"] == "172.30.5.9"
        bridge.disconnect(box)
        # prune takes the unused bridge network with its label, not the overlay
        pruned = client.networks.prune(filters={"label": "suite=prune"})
        assert pruned["NetworksDeleted"] == ["pybridge"]
        with pytest.raises(NotFound):
            client.networks.get("pybridge")
    finally:
        box.remove(force=True)
        net.remove()
    with pytest.raises(NotFound):
        client.networks.get("pynet")


def test_volumes_create_get_list_remove_prune(client: docker.DockerClient) -> None:
    vol = client.volumes.create("pyvol", labels={"suite": "dockerpy"})
    spare = client.volumes.create("pyspare", labels={"suite": "prune"})
    assert client.volumes.get("pyvol").attrs["Labels"] == {"suite": "dockerpy"}
    assert vol.attrs["Driver"] == "local"
    assert [v.name for v in client.volumes.list(filters={"label": "suite=dockerpy"})] == ["pyvol"]
    # a file written through one container is read by the next
    out = client.containers.run(
        TOOLS, ["sh", "-c", "echo kept > /data/f; cat /data/f"], remove=True,
        volumes={"pyvol": {"bind": "/data", "mode": "rw"}},
    )  # fmt: skip
    assert out == b"kept\n"
    again = client.containers.run(
        TOOLS, ["cat", "/data/f"], remove=True, volumes=["pyvol:/data:ro"]
    )
    assert again == b"kept\n"
    # docker-py's Mount objects: a named volume and a tmpfs (its Source sent as null)
    mounts = [
        docker.types.Mount("/data", "pyvol", type="volume", read_only=True),
        docker.types.Mount("/scratch", None, type="tmpfs"),
    ]
    table = client.containers.run(TOOLS, ["cat", "/data/f", "/proc/self/mounts"], remove=True,
                                  mounts=mounts).decode()  # fmt: skip
    assert table.startswith("kept\n")
    assert any(line.split()[1:3] == ["/scratch", "tmpfs"] for line in table.splitlines())
    # since API 1.42 prune takes anonymous volumes only, unless all=true (Docker)
    assert client.volumes.prune(filters={"label": "suite=prune"})["VolumesDeleted"] == []
    pruned = client.volumes.prune(filters={"label": "suite=prune", "all": "true"})
    assert pruned["VolumesDeleted"] == [spare.name]
    vol.remove()
    with pytest.raises(NotFound):
        client.volumes.get("pyvol")
    assert client.volumes.list(filters={"label": "suite=dockerpy"}) == []


def test_swarm_update_through_docker_py_changes_the_task_history_limit(
    lab: LabRig, client: docker.DockerClient
) -> None:
    # docker-py's Swarm.update sends its default CAConfig.NodeCertExpiry (Docker's 90 days)
    # with every update, as its documentation's example does
    swarm = client.swarm
    swarm.reload()
    assert swarm.id == lab.api("h1", "/swarm")["ID"]
    assert swarm.attrs["JoinTokens"]["Worker"].startswith("SWMTKN-1-")
    before = swarm.attrs["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"]
    try:
        assert swarm.update(task_history_retention_limit=before + 2) is True
        swarm.reload()
        assert swarm.attrs["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == before + 2
    finally:
        swarm.update(task_history_retention_limit=before)
    swarm.reload()
    assert swarm.attrs["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == before


def test_info_version_ping_and_df(client: docker.DockerClient) -> None:
    info = client.info()
    assert info["Swarm"]["LocalNodeState"] == "active"
    assert info["Swarm"]["ControlAvailable"] is True
    assert info["Swarm"]["Nodes"] == 3
    version = client.version()
    assert version["ApiVersion"] == "1.47"
    assert version["Os"] == "linux"
    assert client.ping() is True
    df = client.df()
    assert any("tools:latest" in (i["RepoTags"] or []) for i in df["Images"])
    assert {"Containers", "Volumes", "BuildCache", "LayersSize"} <= set(df)


def test_nodes_list_get_update_labels_and_availability(
    lab: LabRig, client: docker.DockerClient
) -> None:
    nodes = client.nodes.list()
    assert sorted(n.attrs["Description"]["Hostname"] for n in nodes) == ["h1", "h2", "h3"]
    managers = client.nodes.list(filters={"role": "manager"})
    assert [n.attrs["Description"]["Hostname"] for n in managers] == ["h1"]
    h3 = next(n for n in nodes if n.attrs["Description"]["Hostname"] == "h3")
    assert client.nodes.get(h3.id).id == h3.id
    spec = dict(h3.attrs["Spec"])
    try:
        assert h3.update({**spec, "Labels": {"zone": "py"}, "Availability": "drain"}) is True
        h3.reload()
        assert h3.attrs["Spec"]["Labels"] == {"zone": "py"}
        assert h3.attrs["Spec"]["Availability"] == "drain"
        labelled = client.nodes.list(filters={"node.label": "zone=py"})
        assert [n.id for n in labelled] == [h3.id]
    finally:
        h3.reload()
        h3.update({**spec, "Labels": {}, "Availability": "active"})
    h3.reload()
    assert h3.attrs["Spec"]["Availability"] == "active"
    assert h3.attrs["Spec"].get("Labels") in ({}, None)


def _running_tasks(service: Any) -> list[dict[str, Any]]:
    return [
        t
        for t in service.tasks(filters={"desired-state": "running"})
        if t["Status"]["State"] == "running"
    ]


def test_services_create_update_scale_logs_tasks_remove(client: docker.DockerClient) -> None:
    svc = client.services.create(
        TOOLS,
        ["sh", "-c", "echo started $SLOT; sleep 600"],
        name="pysvc",
        env=["SLOT=x"],
        labels={"suite": "dockerpy"},
        mode=ServiceMode("replicated", replicas=2),
    )
    try:
        wait_until(lambda: len(_running_tasks(svc)) == 2, 60, "2 tasks of pysvc running")
        assert client.services.get("pysvc").id == svc.id
        listed = client.services.list(filters={"label": "suite=dockerpy"})
        assert [s.name for s in listed] == ["pysvc"]
        svc.scale(3)
        wait_until(lambda: len(_running_tasks(svc)) == 3, 60, "3 tasks of pysvc running")
        svc.reload()
        assert svc.attrs["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
        svc.update(env=["SLOT=y"])
        svc.reload()
        assert svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["SLOT=y"]
        assert svc.attrs["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["SLOT=x"]
        wait_until(
            lambda: (
                [t["Spec"]["ContainerSpec"]["Env"] for t in _running_tasks(svc)] == [["SLOT=y"]] * 3
            ),
            90,
            "3 tasks of the updated pysvc running",
        )
        logs = b"".join(svc.logs(stdout=True, stderr=True))
        assert logs.count(b"started y\n") == 3, logs
        shutdown = svc.tasks(filters={"desired-state": "shutdown"})
        assert len(shutdown) >= 3 and all(t["DesiredState"] == "shutdown" for t in shutdown)
        assert svc.remove() is True
        with pytest.raises(NotFound):
            client.services.get("pysvc")
    finally:
        if client.services.list(filters={"name": "pysvc"}):
            svc.remove()


def test_a_global_service_runs_one_task_per_node(client: docker.DockerClient) -> None:
    svc = client.services.create(TOOLS, ["sleep", "600"], name="pyglobal", mode="global")
    try:
        wait_until(lambda: len(_running_tasks(svc)) == 3, 60, "a task of pyglobal on each node")
        assert len({t["NodeID"] for t in _running_tasks(svc)}) == 3
        assert svc.attrs["Spec"]["Mode"] == {"Global": {}}
        assert [s.name for s in client.services.list(filters={"mode": "global"})] == ["pyglobal"]
    finally:
        svc.remove()


def test_secrets_and_configs_create_get_list_remove(client: docker.DockerClient) -> None:
    secret = client.secrets.create(name="pysecret", data=b"s3cr3t", labels={"suite": "dockerpy"})
    config = client.configs.create(name="pyconfig", data=b"key=value\n", labels={"suite": "py"})
    try:
        got = client.secrets.get(secret.id)
        assert got.name == "pysecret"
        assert "Data" not in got.attrs["Spec"]  # a secret's data never leaves the managers
        assert [s.id for s in client.secrets.list(filters={"name": "pysecret"})] == [secret.id]
        assert [s.id for s in client.secrets.list(filters={"label": "suite=dockerpy"})] == [
            secret.id
        ]
        cfg = client.configs.get(config.id)
        assert cfg.name == "pyconfig"
        assert cfg.attrs["Spec"]["Data"] == "a2V5PXZhbHVlCg=="  # configs are readable, base64
        assert [c.id for c in client.configs.list(filters={"name": "pyconfig"})] == [config.id]
    finally:
        secret.remove()
        config.remove()
    with pytest.raises(NotFound):
        client.secrets.get(secret.id)
    with pytest.raises(NotFound):
        client.configs.get(config.id)


def test_a_services_secret_and_config_are_files_inside_its_task(
    lab: LabRig, client: docker.DockerClient
) -> None:
    secret = client.secrets.create(name="pytasksecret", data=b"only-in-tasks")
    config = client.configs.create(name="pytaskconfig", data=b"mode=py\n")
    svc = None
    try:
        svc = client.services.create(
            TOOLS,
            ["sleep", "600"],
            name="pysecretsvc",
            secrets=[SecretReference(secret.id, "pytasksecret")],
            configs=[docker.types.ConfigReference(config.id, "pytaskconfig", "/etc/py.conf")],
        )
        task = wait_until(lambda: _running_tasks(svc)[:1], 60, "the task of pysecretsvc running")
        node = client.nodes.get(task[0]["NodeID"]).attrs["Description"]["Hostname"]
        container_id = task[0]["Status"]["ContainerStatus"]["ContainerID"]
        local = docker.DockerClient(base_url=lab.socket(node), version="1.47")
        try:
            box = local.containers.get(container_id)
            assert box.exec_run(["cat", "/run/secrets/pytasksecret"]).output == b"only-in-tasks"
            assert box.exec_run(["cat", "/etc/py.conf"]).output == b"mode=py\n"
        finally:
            local.close()
    finally:
        if svc is not None:
            svc.remove()
        wait_until(
            lambda: not client.containers.list(filters={"label": "com.docker.swarm.service.name"
                                                        "=pysecretsvc"}),
            30, "pysecretsvc's task gone on h1",
        )  # fmt: skip
        secret.remove()
        config.remove()


def test_events_stream_live_until_closed(client: docker.DockerClient) -> None:
    # docker-py's documented loop: iterate client.events(), close the stream when done
    stream = client.events(decode=True, filters={"type": "container", "event": "die"})
    seen: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: seen.append(next(stream)))
    reader.start()
    try:
        client.containers.run(TOOLS, ["sh", "-c", "exit 7"], name="pylive", detach=True).wait()
        reader.join(30)
    finally:
        stream.close()
        client.containers.get("pylive").remove()
    assert len(seen) == 1, seen
    assert seen[0]["Actor"]["Attributes"]["name"] == "pylive"
    assert seen[0]["Actor"]["Attributes"]["exitCode"] == "7"


def test_events_see_containers_and_a_services_tasks_starting(client: docker.DockerClient) -> None:
    since = int(time.time()) - 1
    client.containers.run(TOOLS, ["true"], name="pyevents", labels={"ev": "py"}, remove=True)
    # on h1, whose events the client reads: container events are a node's own, as in Docker
    svc = client.services.create(
        TOOLS, ["sleep", "600"], name="pyevsvc", constraints=["node.hostname==h1"]
    )
    try:
        wait_until(lambda: _running_tasks(svc), 60, "the task of pyevsvc running")
    finally:
        svc.remove()
    until = int(time.time()) + 1
    seen = list(client.events(decode=True, since=since, until=until, filters={"label": "ev=py"}))
    actions = [e["Action"] for e in seen if e["Type"] == "container"]
    assert actions[:2] == ["create", "start"] and "die" in actions and "destroy" in actions, seen
    assert all(e["Actor"]["Attributes"]["name"] == "pyevents" for e in seen)
    services = list(
        client.events(decode=True, since=since, until=until, filters={"type": "service",
                      "service": "pyevsvc"})
    )  # fmt: skip
    assert [e["Action"] for e in services][:1] == ["create"], services
    assert services[-1]["Action"] == "remove", services
    assert all(e["Actor"]["Attributes"]["name"] == "pyevsvc" for e in services)
    # the task's container started on h1: its events carry the service's and task's names
    starts = list(
        client.events(decode=True, since=since, until=until, filters={"type": "container",
                      "event": "start", "label": "com.docker.swarm.service.name=pyevsvc"})
    )  # fmt: skip
    assert len(starts) == 1, starts
    attributes = starts[0]["Actor"]["Attributes"]
    assert attributes["com.docker.swarm.task.name"].startswith("pyevsvc.1."), attributes


def test_what_ferry_does_not_serve_answers_dockers_not_implemented_naming_it(
    client: docker.DockerClient,
) -> None:
    with pytest.raises(APIError) as plugins:
        client.plugins.list()
    assert plugins.value.status_code == 501
    assert "Ferry does not implement plugins (GET /plugins)" in str(plugins.value)
    with pytest.raises(APIError) as build:
        client.images.build(fileobj=io.BytesIO(b"FROM tools\n"), tag="pybuilt")
    assert build.value.status_code == 501
    assert "Ferry does not implement image builds" in str(build.value)
    box = client.containers.create(TOOLS, ["true"], name="pycommit")
    try:
        with pytest.raises(APIError) as commit:
            box.commit("pycommitted", "v1")
        assert commit.value.status_code == 501
        assert "Ferry does not implement docker commit (POST /commit)" in str(commit.value)
    finally:
        box.remove()


def test_a_worker_leaves_and_joins_the_swarm_again_through_docker_py(
    lab: LabRig, client: docker.DockerClient
) -> None:
    # last in the module: h3 is a new node afterwards
    h3 = docker.DockerClient(base_url=lab.socket("h3"), version="1.47")
    try:
        old_id = h3.info()["Swarm"]["NodeID"]
        assert h3.swarm.leave() is True
        assert h3.info()["Swarm"]["LocalNodeState"] == "inactive"
        wait_until(
            lambda: client.nodes.get(old_id).attrs["Status"]["State"] == "down",
            DOWN_WITHIN_S,
            "the node h3 left Down",
        )
        client.nodes.get(old_id).remove()
        with pytest.raises(NotFound):
            client.nodes.get(old_id)
        token = client.swarm.attrs["JoinTokens"]["Worker"]
        joined = h3.swarm.join(
            remote_addrs=[f"{lab.topo.node('h1').addr}:2377"],
            join_token=token,
            advertise_addr=lab.topo.node("h3").addr,
        )
        assert joined is True
        new_id = h3.info()["Swarm"]["NodeID"]
        assert new_id and new_id != old_id
        wait_until(
            lambda: client.nodes.get(new_id).attrs["Status"]["State"] == "ready",
            30,
            "h3 Ready again",
        )
        assert client.info()["Swarm"]["Nodes"] == 3
    finally:
        h3.close()
