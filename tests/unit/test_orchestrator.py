"""The orchestrator and the scheduler as pure functions: services → actions, tasks → nodes."""

import datetime as dt
from dataclasses import replace

import pytest

from ferry.errors import InvalidArgument
from ferry.manager.orchestrator import (
    RESTART_DELAY_S,
    ForgetTask,
    RetireTask,
    StartTask,
    StopTask,
    plan_orphans,
    plan_service,
    progress,
)
from ferry.manager.scheduler import Candidate, Load, choose, eligible, parse_constraint
from ferry.model.node import Availability, Node, NodeStatus, Role
from ferry.model.service import (
    TASK_HISTORY,
    ContainerTemplate,
    Mode,
    RestartCondition,
    Service,
    ServiceSpec,
    Task,
    TaskState,
)

NOW = 1_000_000.0
TEMPLATE = ContainerTemplate("tools", ("sleep", "1"))


def iso(seconds_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - seconds_ago, dt.UTC).isoformat()


def node(
    node_id: str,
    *,
    role: Role = Role.WORKER,
    availability: Availability = Availability.ACTIVE,
    labels: dict[str, str] | None = None,
    images: tuple[str, ...] = ("tools:latest",),
) -> Node:
    return Node(
        node_id, f"host-{node_id}", role, "10.99.0.1", availability, labels or {}, images=images
    )


def up(*nodes: Node) -> list[Candidate]:
    return [Candidate(n, NodeStatus.READY) for n in nodes]


def service(
    replicas: int = 3,
    *,
    mode: Mode = Mode.REPLICATED,
    restart: RestartCondition = RestartCondition.ANY,
    constraints: tuple[str, ...] = (),
    version: int = 1,
    image: str = "tools",
) -> Service:
    spec = ServiceSpec(
        "web",
        ContainerTemplate(image, ("sleep", "1")),
        mode,
        replicas,
        constraints=constraints,
        restart=restart,
    )
    return Service("svc", spec, spec_version=version)


def task(
    task_id: str,
    slot: int,
    node_id: str = "n1",
    *,
    state: TaskState = TaskState.RUNNING,
    desired: TaskState = TaskState.RUNNING,
    version: int = 1,
    age: float = 100.0,
) -> Task:
    return Task(
        task_id,
        "svc",
        "web",
        slot,
        TEMPLATE,
        version,
        desired,
        state,
        node_id,
        created_at=iso(age),
        updated_at=iso(age),
    )


def starts(actions: list[object]) -> list[int]:
    return sorted(a.slot for a in actions if isinstance(a, StartTask))


def stops(actions: list[object]) -> list[str]:
    return sorted(a.task_id for a in actions if isinstance(a, StopTask))


NODES = up(node("n1"), node("n2"), node("n3"))


def test_a_new_service_gets_one_task_per_slot() -> None:
    assert starts(plan_service(service(3), [], NODES, NOW)) == [1, 2, 3]


def test_a_converged_service_needs_nothing() -> None:
    tasks = [task("a", 1), task("b", 2), task("c", 3)]
    assert plan_service(service(3), tasks, NODES, NOW) == []


def test_scaling_down_stops_the_highest_slots() -> None:
    tasks = [task(f"t{i}", i) for i in range(1, 6)]
    actions = plan_service(service(2), tasks, NODES, NOW)
    assert stops(actions) == ["t3", "t4", "t5"]
    assert starts(actions) == []


def test_a_failed_task_is_replaced_after_the_restart_delay_and_retired() -> None:
    failed = task("a", 1, state=TaskState.FAILED, age=RESTART_DELAY_S - 1)
    assert starts(plan_service(service(1), [failed], NODES, NOW)) == []
    failed = task("a", 1, state=TaskState.FAILED, age=RESTART_DELAY_S + 1)
    actions = plan_service(service(1), [failed], NODES, NOW)
    assert starts(actions) == [1]
    assert RetireTask("a") in actions


@pytest.mark.parametrize(
    ("condition", "ended", "restarted"),
    [
        (RestartCondition.ANY, TaskState.COMPLETE, True),
        (RestartCondition.ON_FAILURE, TaskState.COMPLETE, False),
        (RestartCondition.ON_FAILURE, TaskState.FAILED, True),
        (RestartCondition.NONE, TaskState.FAILED, False),
    ],
)
def test_restart_conditions_decide_whether_a_finished_task_comes_back(
    condition: RestartCondition, ended: TaskState, restarted: bool
) -> None:
    done = task("a", 1, state=ended, age=60)
    actions = plan_service(service(1, restart=condition), [done], NODES, NOW)
    assert starts(actions) == ([1] if restarted else [])


def test_tasks_on_a_down_node_are_orphaned_and_replaced_at_once() -> None:
    nodes = [Candidate(node("n1"), NodeStatus.DOWN), *up(node("n2"))]
    tasks = [task("a", 1, "n1"), task("b", 2, "n2")]
    actions = plan_service(service(2), tasks, nodes, NOW)
    [stop] = [a for a in actions if isinstance(a, StopTask)]
    assert stop.task_id == "a"
    assert stop.state == TaskState.ORPHANED
    assert starts(actions) == [1]


def test_draining_a_node_moves_its_tasks() -> None:
    nodes = up(node("n1", availability=Availability.DRAIN), node("n2"))
    actions = plan_service(service(1), [task("a", 1, "n1")], nodes, NOW)
    assert stops(actions) == ["a"]
    assert starts(actions) == [1]


def test_a_task_we_stopped_is_refilled_whatever_the_restart_condition() -> None:
    stopped = task("a", 1, state=TaskState.SHUTDOWN, desired=TaskState.SHUTDOWN, age=0)
    assert starts(
        plan_service(service(1, restart=RestartCondition.NONE), [stopped], NODES, NOW)
    ) == [1]


def test_a_rolling_update_replaces_one_task_at_a_time() -> None:
    svc = service(3, version=2)
    tasks = [task("a", 1), task("b", 2), task("c", 3)]
    first = plan_service(svc, tasks, NODES, NOW)
    assert stops(first) == ["a"]
    assert starts(first) == [1]
    updating = [
        task("a", 1, desired=TaskState.SHUTDOWN),
        task("a2", 1, state=TaskState.STARTING, version=2),
        *tasks[1:],
    ]
    assert plan_service(svc, updating, NODES, NOW) == []  # wait for slot 1 to run again
    done = [task("a2", 1, version=2), *tasks[1:]]
    second = plan_service(svc, done, NODES, NOW)
    assert stops(second) == ["b"]


def test_an_update_is_in_progress_until_no_counted_task_runs_an_older_spec() -> None:
    # the moment the spec changes, before anything was stopped, nothing has converged yet
    old = [task("a", 1), task("b", 2), task("c", 3)]
    before = progress(service(3, version=2), old, NODES)
    assert (before.running, before.desired, before.updating) == (3, 3, True)
    last = [
        task("a2", 1, version=2),
        task("b2", 2, version=2),
        task("c", 3, desired=TaskState.SHUTDOWN, state=TaskState.SHUTDOWN),
        task("c2", 3, state=TaskState.STARTING, version=2),
    ]
    now = progress(service(3, version=2), last, NODES)
    assert (now.running, now.desired, now.updating) == (2, 3, False)
    # a task of an old version on a node that is down no longer holds the update back
    lost = [task("a2", 1, "n1", version=2), task("b", 2, "n2")]
    nodes = [Candidate(node("n1"), NodeStatus.READY), Candidate(node("n2"), NodeStatus.DOWN)]
    assert not progress(service(2, version=2), lost, nodes).updating


def test_a_global_service_wants_every_eligible_node_before_any_task_exists() -> None:
    nodes = up(node("n1"), node("n2"), node("n3", availability=Availability.DRAIN))
    fresh = progress(service(mode=Mode.GLOBAL), [], nodes)
    assert (fresh.running, fresh.desired) == (0, 2)
    paused = up(node("n1"), node("n2", availability=Availability.PAUSE))
    keeps = progress(service(mode=Mode.GLOBAL), [task("a", 0, "n2")], paused)
    assert (keeps.running, keeps.desired) == (1, 2)


def test_finished_tasks_beyond_the_history_limit_are_forgotten() -> None:
    old = [
        task(f"old{i}", 1, state=TaskState.FAILED, age=1000 - i) for i in range(TASK_HISTORY + 2)
    ]
    actions = plan_service(service(1), [*old, task("live", 1)], NODES, NOW)
    forgotten = sorted(a.task_id for a in actions if isinstance(a, ForgetTask))
    assert forgotten == ["old0", "old1"]


@pytest.mark.parametrize(("history", "kept"), [(0, 0), (3, 3), (-1, TASK_HISTORY + 2)])
def test_the_swarms_task_history_limit_is_what_each_slot_keeps(history: int, kept: int) -> None:
    old = [
        task(f"old{i}", 1, state=TaskState.FAILED, age=1000 - i) for i in range(TASK_HISTORY + 2)
    ]
    actions = plan_service(service(1), [*old, task("live", 1)], NODES, NOW, history)
    forgotten = [a for a in actions if isinstance(a, ForgetTask)]
    assert len(old) - len(forgotten) == kept


def test_a_global_service_runs_once_on_every_eligible_node() -> None:
    nodes = up(node("n1"), node("n2"), node("n3", availability=Availability.DRAIN))
    actions = plan_service(service(mode=Mode.GLOBAL), [task("a", 0, "n1")], nodes, NOW)
    assert [a.node_id for a in actions if isinstance(a, StartTask)] == ["n2"]


def test_a_global_task_on_a_node_that_no_longer_qualifies_stops() -> None:
    nodes = up(node("n1"), node("n2", role=Role.MANAGER))
    svc = service(mode=Mode.GLOBAL, constraints=("node.role==worker",))
    actions = plan_service(svc, [task("a", 0, "n1"), task("b", 0, "n2")], nodes, NOW)
    assert stops(actions) == ["b"]


def test_tasks_of_removed_services_are_stopped_then_forgotten() -> None:
    live, done = task("a", 1), task("b", 2, state=TaskState.SHUTDOWN, desired=TaskState.SHUTDOWN)
    actions = plan_orphans([live, done], services=set())
    assert stops(actions) == ["a"]
    assert [a.task_id for a in actions if isinstance(a, ForgetTask)] == ["b"]


# scheduler -----------------------------------------------------------------------------------
def test_the_scheduler_spreads_then_balances_and_is_deterministic() -> None:
    nodes = [node("n1"), node("n2"), node("n3")]
    load = Load({"n1": 2, "n2": 1}, {"n1": 2, "n2": 5, "n3": 0})
    assert choose(nodes, load).node_id == "n3"
    load = Load({"n1": 1, "n2": 1, "n3": 1}, {"n1": 3, "n2": 1, "n3": 1})
    assert choose(nodes, load).node_id == "n2"


def test_paused_drained_and_down_nodes_take_no_new_tasks() -> None:
    candidates = [
        Candidate(node("n1", availability=Availability.PAUSE), NodeStatus.READY),
        Candidate(node("n2", availability=Availability.DRAIN), NodeStatus.READY),
        Candidate(node("n3"), NodeStatus.DOWN),
        Candidate(node("n4"), NodeStatus.READY),
    ]
    nodes, reason = eligible(candidates, [])
    assert [n.node_id for n in nodes] == ["n4"]
    assert reason == ""


def test_an_unsatisfiable_constraint_says_why() -> None:
    nodes, reason = eligible(up(node("n1"), node("n2")), [parse_constraint("node.hostname==nope")])
    assert nodes == []
    assert reason == "no suitable node (scheduling constraints not satisfied on 2 nodes)"


def test_constraints_on_hostname_role_and_labels() -> None:
    n1 = node("n1", role=Role.MANAGER, labels={"zone": "a"})
    assert parse_constraint("node.role==manager").matches(n1)
    assert parse_constraint("node.labels.zone==a").matches(n1)
    assert parse_constraint("node.hostname!=host-n1").matches(n1) is False
    with pytest.raises(InvalidArgument):
        parse_constraint("node.planet==mars")
    with pytest.raises(InvalidArgument):
        parse_constraint("node.role==king")


def test_a_node_without_the_image_qualifies_as_it_pulls_it() -> None:
    """Swarm's scheduler places a task whatever images the node holds: the node pulls."""
    nodes, reason = eligible(up(node("n1"), node("n2", images=("busybox:latest",))), [])
    assert ([n.node_id for n in nodes], reason) == (["n1", "n2"], "")


def test_reservations_place_against_each_nodes_capacity() -> None:
    from dataclasses import replace as _replace

    from ferry.manager.scheduler import Load

    small = _replace(node("n1"), ncpu=2, memory_bytes=1 << 30)
    big = _replace(node("n2"), ncpu=4, memory_bytes=8 << 30)
    load = Load()
    load.add("n1", False, (1_500_000_000, 512 << 20))
    nodes, _ = eligible(up(small, big), [], load, (1_000_000_000, 0))
    assert [n.node_id for n in nodes] == ["n2"]  # n1 has 0.5 CPU left
    nodes, reason = eligible(up(small, big), [], load, (0, 16 << 30))
    assert nodes == [] and reason == "no suitable node (insufficient resources on 2 nodes)"
    nodes, _ = eligible(up(small, big), [], load, (0, 0))
    assert len(nodes) == 2


def test_a_service_s_own_restart_delay_decides_when_a_slot_is_refilled() -> None:
    # RestartPolicy.Delay (docker service create --restart-delay 30s)
    slow = service(1)
    slow = replace(slow, spec=replace(slow.spec, restart_delay_s=30.0))
    failed = task("a", 1, state=TaskState.FAILED, age=RESTART_DELAY_S + 1)
    assert starts(plan_service(slow, [failed], NODES, NOW)) == []
    failed = task("a", 1, state=TaskState.FAILED, age=31.0)
    assert starts(plan_service(slow, [failed], NODES, NOW)) == [1]
    quick = service(1)
    quick = replace(quick, spec=replace(quick.spec, restart_delay_s=0.0))
    failed = task("a", 1, state=TaskState.FAILED, age=0.0)
    assert starts(plan_service(quick, [failed], NODES, NOW)) == [1]
