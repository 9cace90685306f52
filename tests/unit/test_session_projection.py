"""What a worker's session stream carries: its own tasks whole, everything else cut down to what
its data plane reads (``manager/projection.py``); a manager's stream carries the store as is."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

import pytest

from ferry.manager import projection
from ferry.manager.projection import Share
from ferry.manager.secrets import ObjectOps
from ferry.manager.store import Delete, Put, keys
from ferry.model.codec import encode
from ferry.model.logs import DoctorRequest, LogRequest
from ferry.model.node import Node, Role
from ferry.model.runopts import Healthcheck, MountSpec, MountType
from ferry.model.service import (
    ContainerTemplate,
    EndpointMode,
    PortSpec,
    Service,
    ServiceSpec,
    Task,
    TaskOptions,
    TaskState,
)
from ferry.model.swarm_objects import Kind, SwarmObject
from tests.unit.conftest import ManagerRig

SECRET_TEMPLATE = ContainerTemplate(
    image="tools:latest",
    cmd=("sleep", "600"),
    env=("DB_PASSWORD=hunter2",),
    entrypoint=("/bin/sh", "-c"),
    registry_auth="eyJwYXNzd29yZCI6InMzY3IzdCJ9",
    stop_grace_s=7.0,
    options=TaskOptions(
        user="app",
        mounts=(MountSpec(MountType.BIND, "/keys", source="/srv/keys"),),
        healthcheck=Healthcheck(test=("CMD", "check", "--token=hunter2")),
        limit_memory_bytes=1 << 30,
    ),
)
SECRETS = ("hunter2", "eyJwYXNzd29yZCI6InMzY3IzdCJ9", "/srv/keys", "--token", "/bin/sh")


def service(svc_id: str = "s1", name: str = "secretsvc") -> Service:
    spec = ServiceSpec(
        name=name,
        template=SECRET_TEMPLATE,
        networks=("net1",),
        endpoint_mode=EndpointMode.DNSRR,
        ports=(PortSpec(8080, 80),),
        constraints=("node.hostname==h1",),
        labels={"owner": "hunter2"},
    )
    return Service(svc_id, spec, spec_version=3, previous=spec)


def task(task_id: str, node_id: str, state: TaskState = TaskState.RUNNING) -> Task:
    return Task(
        task_id=task_id, svc_id="s1", service_name="secretsvc", slot=1,
        template=SECRET_TEMPLATE, spec_version=3, state=state, node_id=node_id,
        message="started", error="exit code 3", container_id="c" * 64,
    )  # fmt: skip


def test_a_service_reaches_a_worker_as_its_networking_facts_only() -> None:
    svc = service()
    assert projection.share(keys.service("s1"), svc, "n2") == Share.NETWORKING
    cut = projection.project(svc, Share.NETWORKING)
    assert isinstance(cut, Service)
    assert (cut.svc_id, cut.spec.name, cut.spec.networks) == ("s1", "secretsvc", ("net1",))
    assert (cut.spec.endpoint_mode, cut.spec.ports) == (EndpointMode.DNSRR, (PortSpec(8080, 80),))
    assert cut.spec.template == ContainerTemplate(image="", cmd=())
    assert (cut.previous, cut.spec.labels, cut.spec.constraints) == (None, {}, ())
    text = encode(cut).decode()
    assert not [s for s in SECRETS if s in text]


def test_a_task_is_whole_on_its_node_and_networking_elsewhere() -> None:
    mine = task("t1", "n2")
    assert projection.share(keys.task("t1"), mine, "n2") == Share.WHOLE
    assert projection.share(keys.task("t1"), mine, "n3") == Share.NETWORKING
    unassigned = task("t2", "", TaskState.PENDING)
    assert projection.share(keys.task("t2"), unassigned, "") == Share.NETWORKING
    assert projection.share(keys.task("t2"), unassigned, "n2") == Share.NETWORKING
    cut = projection.project(mine, Share.NETWORKING)
    assert isinstance(cut, Task)
    assert (cut.task_id, cut.svc_id, cut.service_name, cut.slot, cut.node_id) == (
        "t1", "s1", "secretsvc", 1, "n2",
    )  # fmt: skip
    assert cut.serving and cut.name == mine.name
    assert (cut.template, cut.error, cut.message) == (ContainerTemplate(image="", cmd=()), "", "")
    assert not [s for s in SECRETS if s in encode(cut).decode()]


def test_a_finished_task_keeps_on_its_node_only_what_stopping_it_reads() -> None:
    done = task("t1", "n2", TaskState.SHUTDOWN)
    assert projection.share(keys.task("t1"), done, "n2") == Share.OWN_DONE
    cut = projection.project(done, Share.OWN_DONE)
    assert isinstance(cut, Task)
    assert cut.template == ContainerTemplate(image="tools:latest", cmd=(), stop_grace_s=7.0)
    assert not [s for s in SECRETS if s in encode(cut).decode()]


def test_another_node_reaches_a_worker_as_a_peer_and_its_own_record_whole() -> None:
    other = Node(
        node_id="n1", hostname="h1", role=Role.MANAGER, addr="10.0.0.1",
        labels={"rack": "hunter2"}, engine_version="28.0", ncpu=2, memory_bytes=1 << 34,
        images=("registry.internal/secret-app:1",), ports=("tcp/8080",), wg_key="k1=",
    )  # fmt: skip
    assert projection.share(keys.node("n1"), other, "n1") == Share.WHOLE
    assert projection.share(keys.node("n1"), other, "n2") == Share.NETWORKING
    assert projection.share(keys.node("n1"), {"raw": 1}, "n2") == Share.NONE
    cut = projection.project(other, Share.NETWORKING)
    assert cut == Node("n1", "h1", Role.MANAGER, "10.0.0.1", wg_key="k1=")
    text = encode(cut).decode()
    assert not [s for s in ("hunter2", "secret-app", "tcp/8080") if s in text]


def test_other_nodes_requests_and_undecodable_values_are_withheld() -> None:
    logs = LogRequest("r1", "n1", ("t1",), -1, False, "10.0.0.1:2377")
    assert projection.share(keys.log_request("n1", "r1"), logs, "n1") == Share.WHOLE
    assert projection.share(keys.log_request("n1", "r1"), logs, "n2") == Share.NONE
    assert not projection.key_visible(keys.doctor_request("n1", "r1"), "n2")
    assert projection.key_visible(keys.doctor_request("n2", "r1"), "n2")
    assert projection.share(keys.service("s1"), None, "n2") == Share.NONE
    assert projection.share(keys.task("t1"), {"raw": 1}, "n2") == Share.NONE
    with pytest.raises(ValueError, match="nothing to send"):
        projection.project(service(), Share.NONE)


# the stream ------------------------------------------------------------------------------------
async def put(rig: ManagerRig, *ops: Put | Delete) -> None:
    rev = await rig.store.commit(list(ops))
    assert rev is not None
    await rig.feed.wait_for(rev)


def values(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    return {item["k"]: item["v"] for item in message["items"]}


async def next_values(stream: AsyncGenerator[bytes, None]) -> dict[str, Any]:
    return values(await anext(stream))


@pytest.fixture
async def swarm(rig: ManagerRig) -> ManagerRig:
    await rig.add_node("m1", "h1", Role.MANAGER)
    await rig.add_node("n2", "h2")
    await rig.add_node("n3", "h3")
    svc = service()
    await put(
        rig,
        Put(keys.service("s1"), encode(svc)),
        Put(keys.task("t1"), encode(task("t1", "m1"))),
        Put(keys.log_request("m1", "r1"), encode(LogRequest("r1", "m1", ("t1",), 10, False, "x"))),
        Put(keys.doctor_request("n3", "d1"), encode(DoctorRequest("d1", "n3", "x"))),
    )
    return rig


async def test_a_workers_snapshot_holds_no_template_of_a_service_without_a_task_there(
    swarm: ManagerRig,
) -> None:
    stream = swarm.hub.stream("n3", "worker")
    line = await anext(stream)
    assert not [s for s in SECRETS if s.encode() in line]
    snapshot = values(line)
    assert snapshot[keys.service("s1")]["spec"]["name"] == "secretsvc"
    assert snapshot[keys.service("s1")]["spec"]["template"]["env"] == []
    assert snapshot[keys.task("t1")]["node_id"] == "m1"
    assert snapshot[keys.task("t1")]["state"] == "running"
    assert keys.log_request("m1", "r1") not in snapshot  # another node's requests
    assert keys.doctor_request("n3", "d1") in snapshot  # its own
    assert keys.node("n2") in snapshot and keys.CLUSTER in snapshot
    await stream.aclose()


async def test_a_task_assigned_later_brings_its_template_in_the_same_event(
    swarm: ManagerRig,
) -> None:
    stream = swarm.hub.stream("n3", "worker")
    await anext(stream)
    other = swarm.hub.stream("n2", "worker")
    await anext(other)
    await put(swarm, Put(keys.task("t2"), encode(task("t2", "", TaskState.PENDING))))
    pending = await next_values(stream)
    assert pending[keys.task("t2")]["template"]["env"] == []
    await put(swarm, Put(keys.task("t2"), encode(task("t2", "n3", TaskState.ASSIGNED))))
    assigned = await next_values(stream)
    assert assigned[keys.task("t2")]["template"]["env"] == ["DB_PASSWORD=hunter2"]
    assert assigned[keys.task("t2")]["template"]["registry_auth"] == SECRET_TEMPLATE.registry_auth
    for _ in ("pending", "assigned"):  # n2 sees both changes, as networking facts only
        seen = await anext(other)
        assert b'"t":"event"' in seen
        assert not [s for s in SECRETS if s.encode() in seen]
    # finished: the template leaves the node's mirror with the event that ends the task
    await put(swarm, Put(keys.task("t2"), encode(task("t2", "n3", TaskState.SHUTDOWN))))
    finished = await anext(stream)
    assert not [s for s in SECRETS if s.encode() in finished]
    assert values(finished)[keys.task("t2")]["template"]["stop_grace_s"] == 7.0
    await put(swarm, Delete(keys.task("t2")))
    assert await next_values(stream) == {keys.task("t2"): None}
    await stream.aclose()
    await other.aclose()


async def test_a_workers_events_withhold_other_nodes_requests_and_templates(
    swarm: ManagerRig,
) -> None:
    stream = swarm.hub.stream("n3", "worker")
    await anext(stream)
    updated = replace(service(), spec_version=4)
    await put(
        swarm,
        Put(keys.service("s1"), encode(updated)),
        Put(keys.log_request("m1", "r2"), encode(LogRequest("r2", "m1", ("t1",), 1, False, "x"))),
    )
    event = await anext(stream)
    assert not [s for s in SECRETS if s.encode() in event]
    assert list(values(event)) == [keys.service("s1")]
    await put(swarm, Delete(keys.log_request("m1", "r2")), Delete(keys.service("s1")))
    assert await next_values(stream) == {keys.service("s1"): None}
    await stream.aclose()


async def test_a_manager_gets_the_store_whole_and_a_worker_certificate_does_not_make_one(
    swarm: ManagerRig,
) -> None:
    whole = swarm.hub.stream("m1", "manager")
    snapshot = values(await anext(whole))
    assert snapshot[keys.service("s1")]["spec"]["template"]["env"] == ["DB_PASSWORD=hunter2"]
    assert keys.log_request("m1", "r1") in snapshot
    await whole.aclose()
    # the store says worker: a certificate that claims manager is not enough, nor the reverse
    for node_id, role in (("n2", "manager"), ("m1", "worker")):
        stream = swarm.hub.stream(node_id, role)
        assert values(await anext(stream))[keys.service("s1")]["spec"]["template"]["env"] == []
        await stream.aclose()


def test_secrets_configs_and_anything_unstreamed_are_withheld_from_workers() -> None:
    obj = SwarmObject("x1", "db", "aesgcm1:c2VhbGVk")
    for key in (
        keys.swarm_secret("x1"),
        keys.config("x1"),
        keys.SECRET_NAMES + "db",
        keys.CONFIG_NAMES + "db",
        keys.SECRETS,
        keys.STORE_TLS + "m1",
        keys.ROOT + "kind-added-later/x",
    ):
        assert projection.share(key, obj, "n2") == Share.NONE, key
        assert projection.share(key, obj, "") == Share.NONE, key


async def test_a_worker_never_receives_a_secret_or_a_config(swarm: ManagerRig) -> None:
    secrets_ops, configs_ops = (
        ObjectOps(
            kind,
            store=swarm.store,
            view=swarm.view,
            feed=swarm.feed,
            vault=swarm.vault,
            cluster_secrets=swarm.nodes.secrets,
        )
        for kind in (Kind.SECRET, Kind.CONFIG)
    )
    stream = swarm.hub.stream("n2", "worker")
    await anext(stream)
    secret = await secrets_ops.create("db-pass", b"hunter3-plain", {"a": "b"})
    config = await configs_ops.create("app.conf", b"listen 8080-plain", {})
    await put(swarm, Put(keys.service("s1"), encode(replace(service(), spec_version=2))))
    event = await anext(stream)  # the secret's and config's changes made no event of their own
    assert list(values(event)) == [keys.service("s1")]
    await secrets_ops.remove(secret.obj_id)
    await configs_ops.remove(config.obj_id)
    await put(swarm, Delete(keys.service("s1")))
    assert await next_values(stream) == {keys.service("s1"): None}  # nor their removal
    await stream.aclose()
    await configs_ops.create("app2.conf", b"listen 8080-plain", {})
    await secrets_ops.create("db-pass2", b"hunter3-plain", {})
    fresh = swarm.hub.stream("n2", "worker")
    line = await anext(fresh)
    assert b"-plain" not in line and b"db-pass2" not in line and b"app2.conf" not in line
    assert not [k for k in values(line) if k.startswith((keys.SWARM_SECRETS, keys.CONFIGS))]
    await fresh.aclose()
