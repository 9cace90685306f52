"""Services and registries on the manager: nodes need not hold the image (they pull it), the
image is pinned to its registry's digest at create as Docker does, the credentials go with the
spec, and a task whose image no registry has is retried after the restart delay, not in a
storm (leader passes driven by hand, as in test_leader_pass)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace

import pytest

from ferry.api.models.services import ServiceSpecModel
from ferry.api.service_spec import request_of, spec_json
from ferry.errors import InvalidArgument
from ferry.manager.networks import NetworkOps
from ferry.manager.orchestrator import RESTART_DELAY_S
from ferry.manager.reconciler import ServiceReconciler
from ferry.manager.services import ServiceOps, ServiceRequest
from ferry.model.service import Task, TaskState
from ferry.runtime.images import RegistryAuth
from tests.unit.conftest import Clock, ManagerRig

DIGEST = "sha256:" + "ab" * 32
NO_SUCH_IMAGE = "No such image: nginx:latest"


class Registry:
    """A resolver that answers ``digest`` (None: unreachable) and records what it was asked."""

    def __init__(self, digest: str | None) -> None:
        self.digest = digest
        self.asked: list[tuple[str, RegistryAuth | None]] = []

    async def __call__(self, ref: str, auth: RegistryAuth | None) -> str | None:
        self.asked.append((ref, auth))
        return self.digest


async def swarm(
    rig: ManagerRig, nodes: int, registry: Registry | None = None
) -> tuple[ServiceOps, ServiceReconciler, Clock]:
    for i in range(1, nodes + 1):
        await rig.add_node(f"n{i}", f"h{i}")
        await rig.hub.heartbeat(f"n{i}")  # holding no image at all
    await rig.feed.wait_for(rig.store.revision)
    networks = NetworkOps(rig.store, rig.view, rig.feed)
    services = ServiceOps(rig.store, rig.view, rig.feed, networks, registry or Registry(None))
    clock = Clock()
    clock.now = time.time()
    leader = ServiceReconciler(rig.store, rig.view, rig.feed, networks, clock=clock)
    return services, leader, clock


def tasks_of(rig: ManagerRig, name: str) -> list[Task]:
    return sorted(
        (t for t in rig.view.tasks() if t.service_name == name), key=lambda t: t.created_at
    )


def header(username: str, password: str) -> str:
    doc = {"username": username, "password": password, "serveraddress": "10.30.0.250:5000"}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


async def test_tasks_go_to_nodes_that_never_had_the_image(rig: ManagerRig) -> None:
    services, leader, _ = await swarm(rig, 3)
    await services.create(ServiceRequest("web", "nginx", (), replicas=3))  # no command either
    await leader.reconcile()
    placed = tasks_of(rig, "web")
    assert [t.state for t in placed] == [TaskState.ASSIGNED] * 3
    assert sorted(t.node_id for t in placed) == ["n1", "n2", "n3"]
    assert placed[0].template.cmd == ()  # the image's Cmd runs


async def test_create_pins_the_image_to_the_registrys_digest(rig: ManagerRig) -> None:
    registry = Registry(DIGEST)
    services, _, _ = await swarm(rig, 1, registry)
    asked = ServiceRequest("web", "nginx", (), query_registry=True)
    wanted, warnings = await services.pin(asked)
    svc = await services.create(wanted)
    assert svc.spec.template.image == f"nginx:latest@{DIGEST}"
    assert (warnings, registry.asked) == ([], [("nginx:latest", None)])


async def test_an_unreachable_registry_keeps_the_tag_with_dockers_warning(
    rig: ManagerRig,
) -> None:
    services, _, _ = await swarm(rig, 1, Registry(None))
    wanted, warnings = await services.pin(ServiceRequest("web", "nginx", (), query_registry=True))
    assert wanted.image == "nginx:latest"
    assert warnings == [
        "image nginx:latest could not be accessed on a registry to record\nits digest. Each "
        "node will access nginx:latest independently,\npossibly leading to different nodes "
        "running different\nversions of the image.\n"
    ]


async def test_no_resolve_image_and_a_pinned_reference_ask_no_registry(rig: ManagerRig) -> None:
    registry = Registry(DIGEST)
    services, _, _ = await swarm(rig, 1, registry)
    wanted, _ = await services.pin(ServiceRequest("web", "nginx", ()))  # --no-resolve-image
    assert wanted.image == "nginx"
    pinned = ServiceRequest("web", f"nginx@{DIGEST}", (), query_registry=True)
    wanted, _ = await services.pin(pinned)  # the docker CLI resolved it already
    assert wanted.image == f"nginx:latest@{DIGEST}"
    assert registry.asked == []
    with pytest.raises(InvalidArgument, match="sha256"):
        await services.pin(replace(pinned, image="nginx@sha256:short"))


async def test_with_registry_auth_resolves_with_the_credentials_and_keeps_them_for_nodes(
    rig: ManagerRig,
) -> None:
    registry = Registry(DIGEST)
    services, _, _ = await swarm(rig, 1, registry)
    auth = header("ferry", "s3cret")
    asked = ServiceRequest("web", "nginx", (), query_registry=True, registry_auth=auth)
    svc = await services.create((await services.pin(asked))[0])
    assert registry.asked == [("nginx:latest", RegistryAuth("ferry", "s3cret", "10.30.0.250:5000"))]
    assert svc.spec.template.registry_auth == auth
    assert "s3cret" not in json.dumps(spec_json(svc.spec, 0))  # inspect never shows it
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        await services.create(replace(asked, registry_auth="not base64!"))


def test_command_is_the_entrypoint_and_args_the_cmd_as_in_swarm() -> None:
    body = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}}}
    assert (request_of(ServiceSpecModel.model_validate(body)).entrypoint) is None
    body["TaskTemplate"]["ContainerSpec"] |= {"Command": ["top"], "Args": ["-b"]}  # type: ignore[index]
    req = request_of(ServiceSpecModel.model_validate(body))
    assert (req.entrypoint, req.cmd) == (("top",), ("-b",))


async def failed_pulls(rig: ManagerRig, services: ServiceOps, name: str) -> list[Task]:
    """Every live task of the service fails as a node that finds no such image reports it."""
    failed = []
    for task in tasks_of(rig, name):
        if task.live and task.node_id:
            await services.task_status(
                task.node_id, task.task_id, TaskState.FAILED, error=NO_SUCH_IMAGE
            )
            failed.append(task)
    return failed


@pytest.mark.parametrize("mode", ["replicated", "global"])
async def test_a_task_whose_image_no_registry_has_is_retried_after_the_delay_not_in_a_storm(
    rig: ManagerRig, mode: str
) -> None:
    services, leader, clock = await swarm(rig, 2)
    replicas = 2 if mode == "replicated" else None
    await services.create(ServiceRequest("web", "nginx", (), mode=mode, replicas=replicas))
    await leader.reconcile()
    assert len(await failed_pulls(rig, services, "web")) == 2
    for _ in range(20):  # many passes within the delay: no new task at all
        clock.now += RESTART_DELAY_S / 40
        await leader.reconcile()
    tasks = tasks_of(rig, "web")
    assert [(t.state, t.error) for t in tasks] == [(TaskState.FAILED, NO_SUCH_IMAGE)] * 2
    clock.now += RESTART_DELAY_S  # the delay is over: one new task per slot (per node)
    await leader.reconcile()
    await leader.reconcile()
    tasks = tasks_of(rig, "web")
    assert len(tasks) == 4
    assert [t.state for t in tasks if t.live] == [TaskState.ASSIGNED] * 2
    retired = [t for t in tasks if t.state == TaskState.FAILED]
    assert [t.desired for t in retired] == [TaskState.SHUTDOWN] * 2  # superseded, kept for ps
