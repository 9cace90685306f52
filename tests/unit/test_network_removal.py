"""Removing a swarm network right after its services (``docker stack rm``): the endpoints of
tasks being shut down are waited for, as swarmkit deletes such a network once they are gone;
anything else still on it is refused at once."""

from __future__ import annotations

import asyncio

import pytest

from ferry.errors import Conflict
from ferry.manager.networks import NetworkOps
from ferry.manager.store import Delete, Put, keys
from ferry.model.codec import encode
from ferry.model.network import Endpoint, EndpointKind, NetworkRequest
from ferry.model.service import ContainerTemplate, Task, TaskState
from tests.unit.conftest import ManagerRig


async def _task_on(rig: ManagerRig, net_id: str, desired: TaskState) -> Endpoint:
    task = Task("t1", "s1", "app_web", 1, ContainerTemplate("tools", ()), 1, desired=desired)
    endpoint = Endpoint(
        "e1", net_id, "n1", "10.0.9.3", "02:42:0a:00:09:03", EndpointKind.TASK, "t1",
        "app_web.1.t1", service="app_web",
    )  # fmt: skip
    revision = await rig.store.commit(
        [Put(keys.task("t1"), encode(task)), Put(keys.endpoint(net_id, "e1"), encode(endpoint))]
    )
    assert revision is not None
    await rig.feed.wait_for(revision)
    return endpoint


async def test_a_network_waits_for_the_endpoints_of_tasks_being_shut_down(
    rig: ManagerRig,
) -> None:
    networks = NetworkOps(rig.store, rig.view, rig.feed)
    net = await networks.create(NetworkRequest("app_front"))
    endpoint = await _task_on(rig, net.net_id, TaskState.SHUTDOWN)
    removing = asyncio.ensure_future(networks.remove("app_front"))
    await asyncio.sleep(0.5)
    assert not removing.done()  # the task's container is still stopping
    await rig.store.commit([Delete(keys.endpoint(net.net_id, endpoint.ep_id))])
    assert (await asyncio.wait_for(removing, 5)).name == "app_front"
    assert rig.view.network(net.net_id) is None


async def test_a_network_with_a_running_tasks_endpoint_is_refused_at_once(
    rig: ManagerRig,
) -> None:
    networks = NetworkOps(rig.store, rig.view, rig.feed)
    await networks.create(NetworkRequest("app_front"))
    net = networks.find("app_front")
    await _task_on(rig, net.net_id, TaskState.RUNNING)
    with pytest.raises(Conflict, match="has active endpoints"):
        await asyncio.wait_for(networks.remove("app_front"), 2)
