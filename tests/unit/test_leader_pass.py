"""The leader's pass: one service's trouble never holds up another (issue 8, inputs 2 and 4)."""

from __future__ import annotations

from dataclasses import replace

from ferry.manager.networks import NetworkOps
from ferry.manager.reconciler import ServiceReconciler
from ferry.manager.services import ServiceOps, ServiceRequest
from ferry.manager.store import Put, keys
from ferry.manager.store.schema import LeaderRecord
from ferry.model.codec import encode
from ferry.model.network import NetworkRequest
from ferry.model.service import PortSpec, PublishMode, Task, TaskState
from tests.unit.conftest import ManagerRig

TOOLS = ("tools:latest",)  # the image every node has here


async def rig_up(rig: ManagerRig, *hostnames: str) -> tuple[ServiceOps, ServiceReconciler]:
    for i, hostname in enumerate(hostnames, 1):
        await rig.add_node(f"n{i}", hostname)
        await rig.hub.heartbeat(f"n{i}", images=TOOLS)
    await rig.feed.wait_for(rig.store.revision)
    networks = NetworkOps(rig.store, rig.view, rig.feed)
    services = ServiceOps(rig.store, rig.view, rig.feed, networks)
    return services, ServiceReconciler(rig.store, rig.view, rig.feed, networks)


MANY = ServiceRequest("many", "tools", ("sleep", "1"), replicas=14, networks=("small",))


def tasks_of(rig: ManagerRig, name: str) -> list[Task]:
    return [t for t in rig.view.tasks() if t.service_name == name]


async def test_a_full_network_leaves_the_tasks_that_do_not_fit_pending_and_others_run(
    rig: ManagerRig,
) -> None:
    services, leader = await rig_up(rig, "h1", "h2", "h3")
    await NetworkOps(rig.store, rig.view, rig.feed).create(
        NetworkRequest("small", subnet="10.50.0.0/28")
    )
    await services.create(MANY)
    await services.create(ServiceRequest("other", "tools", ("sleep", "1")))
    await leader.reconcile()
    many = tasks_of(rig, "many")
    placed = [t for t in many if t.state == TaskState.ASSIGNED]
    pending = [t for t in many if t.state == TaskState.PENDING]
    # a /28 holds 13 addresses after the gateway; the service's VIP takes one
    assert len(placed) == 12
    assert len(pending) == 2
    # Docker's place for the scheduler's reason: Status.Err (the ERROR column of service ps)
    assert {t.error for t in pending} == {"no free address on network small (10.50.0.0/28)"}
    assert {t.message for t in pending} == {"pending task scheduling"}
    assert [t.state for t in tasks_of(rig, "other")] == [TaskState.ASSIGNED]
    # the next passes write nothing: the reason is already there
    revision = rig.store.revision
    await leader.reconcile()
    await leader.reconcile()
    assert rig.store.revision == revision
    # an address comes free (a task ended): a pending task takes it on the next pass
    done = next(t for t in placed if t.slot == 1)
    await services.task_status(done.node_id, done.task_id, TaskState.COMPLETE)
    await leader.reconcile()
    [still] = [t for t in tasks_of(rig, "many") if t.live and t.state == TaskState.PENDING]
    # scaled down, a pending task that never reached a node is done at once
    await services.update("many", None, replace(MANY, replicas=12), None)
    await leader.reconcile()
    gone = rig.view.task(still.task_id)
    assert gone is not None
    assert (gone.desired, gone.state) == (TaskState.SHUTDOWN, TaskState.SHUTDOWN)


async def test_a_global_task_waiting_for_its_node_stays_one_task(rig: ManagerRig) -> None:
    services, leader = await rig_up(rig, "h1", "h2", "h3")
    await rig.hub.heartbeat(
        "n3", ports=("tcp/9003",), images=TOOLS
    )  # an old container still holds the port
    await rig.feed.wait_for(rig.store.revision)
    port = PortSpec(9003, 80, "tcp", PublishMode.HOST)
    await services.create(ServiceRequest("g", "tools", ("sleep", "1"), mode="global",
                                         ports=(port,)))  # fmt: skip
    for _ in range(10):
        await leader.reconcile()
    on_n3 = [t for t in tasks_of(rig, "g") if t.node_id == "n3"]
    assert len(on_n3) == 1
    assert on_n3[0].state == TaskState.PENDING
    assert "host port 9003/tcp" in on_n3[0].error
    assert len(tasks_of(rig, "g")) == 3
    # the port comes free on n3: the same task is placed there
    await rig.hub.heartbeat("n3", ports=(), images=TOOLS)
    await rig.feed.wait_for(rig.store.revision)
    await leader.reconcile()
    [placed] = [t for t in tasks_of(rig, "g") if t.node_id == "n3"]
    assert (placed.task_id, placed.state) == (on_n3[0].task_id, TaskState.ASSIGNED)
    assert placed.error == ""  # placed: the reason it waited is gone


async def test_a_task_whose_constraint_no_longer_parses_waits_with_the_reason(
    rig: ManagerRig,
) -> None:
    services, leader = await rig_up(rig, "h1")
    broken = await services.create(ServiceRequest("broken", "tools", ("sleep", "1")))
    await services.create(ServiceRequest("fine", "tools", ("sleep", "1")))
    # a spec written by an older ferryd, that no longer parses: a constraint of a kind unknown
    bad = replace(broken, spec=replace(broken.spec, constraints=("node.colour==red",)))
    revision = await rig.store.commit([Put(keys.service(broken.svc_id), encode(bad))])
    assert revision is not None
    await rig.feed.wait_for(revision)
    await leader.reconcile()
    [pending] = tasks_of(rig, "broken")
    assert pending.state == TaskState.PENDING
    assert "invalid constraint" in pending.error
    assert [t.state for t in tasks_of(rig, "fine")] == [TaskState.ASSIGNED]


async def test_a_service_whose_plan_fails_is_set_aside_with_a_back_off_and_others_go_on(
    rig: ManagerRig,
) -> None:
    services, leader = await rig_up(rig, "h1")
    broken = await services.create(ServiceRequest("gbroken", "tools", ("sleep", "1"),
                                                  mode="global"))  # fmt: skip
    await services.create(ServiceRequest("fine", "tools", ("sleep", "1")))
    bad = replace(broken, spec=replace(broken.spec, constraints=("node.colour==red",)))
    revision = await rig.store.commit([Put(keys.service(broken.svc_id), encode(bad))])
    assert revision is not None
    await rig.feed.wait_for(revision)
    await leader.reconcile()  # does not raise: the other services are planned all the same
    assert tasks_of(rig, "gbroken") == []
    assert [t.state for t in tasks_of(rig, "fine")] == [TaskState.ASSIGNED]
    retry_at, delay_s = leader._backoff[broken.svc_id]
    assert delay_s == 1.0
    await leader.reconcile()  # still within its back-off: not planned again
    assert leader._backoff[broken.svc_id] == (retry_at, delay_s)


async def test_a_new_leader_plans_nothing_until_its_mirror_shows_its_term(rig: ManagerRig) -> None:
    """A restarted leader's mirror may still hold its previous term's record: with this term's
    lapsed sessions, that would read as 'every node is down' (issue 8, input 3)."""
    services, _ = await rig_up(rig, "h1")
    networks = NetworkOps(rig.store, rig.view, rig.feed)
    term = LeaderRecord("mgr", "2026-11-30T10:00:00Z")
    leader = ServiceReconciler(rig.store, rig.view, rig.feed, networks, term=lambda: term)
    old = LeaderRecord("mgr", "2026-11-30T09:00:00Z")
    revision = await rig.store.commit([Put(keys.LEADER, encode(old))])
    assert revision is not None
    await rig.feed.wait_for(revision)
    await services.create(ServiceRequest("web", "tools", ("sleep", "1")))
    await leader.reconcile()
    assert tasks_of(rig, "web") == []
    revision = await rig.store.commit([Put(keys.LEADER, encode(term))])
    assert revision is not None
    await rig.feed.wait_for(revision)
    await leader.reconcile()
    assert [t.state for t in tasks_of(rig, "web")] == [TaskState.ASSIGNED]


async def test_a_rolling_update_keeps_the_spread(rig: ManagerRig) -> None:
    """Issue 12: each replacement goes where the task it replaces was (the stopped task no
    longer counts on its node in the same pass), so 3 replicas on 3 nodes stay 1 per node."""
    from ferry.model.update_policy import UpdatePolicy

    services, leader = await rig_up(rig, "h1", "h2", "h3")
    web = ServiceRequest("web", "tools", ("sleep", "1"), replicas=3,
                         update=UpdatePolicy(parallelism=1))  # fmt: skip
    await services.create(web)
    # another service's task makes h1 the busiest node overall
    await services.create(ServiceRequest("other", "tools", ("sleep", "1"),
                                         constraints=("node.hostname==h1",)))  # fmt: skip
    await leader.reconcile()

    async def run_all() -> None:
        for task in tasks_of(rig, "web"):
            if task.live and task.state != TaskState.RUNNING:
                await services.task_status(task.node_id, task.task_id, TaskState.RUNNING)

    await run_all()
    assert sorted(t.node_id for t in tasks_of(rig, "web") if t.live) == ["n1", "n2", "n3"]
    for env in (("V=1",), ("V=2",)):
        await services.update("web", None, replace(web, env=env), None)
        for _batch in range(3):
            await leader.reconcile()
            await run_all()
        live = [t for t in tasks_of(rig, "web") if t.live]
        assert all(t.template.env == env for t in live), live
        assert sorted(t.node_id for t in live) == ["n1", "n2", "n3"], live
