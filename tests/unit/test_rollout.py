"""A service's roll-over by its UpdateConfig and RollbackConfig (swarmkit's updater): batches,
delay, order, and what failed new tasks do; pure planning, no kernel, no store."""

from __future__ import annotations

from dataclasses import replace

from ferry.manager.orchestrator import AdoptTask, StartTask, StopTask, plan_service, update_state
from ferry.manager.rollout import UPDATED, HaltUpdate
from ferry.model.service import ContainerTemplate, Service, Task, TaskState
from ferry.model.update_policy import FailureAction, UpdateOrder, UpdatePolicy
from tests.unit.test_orchestrator import NODES, NOW, iso, service, starts, stops, task

ROLLED = iso(60)  # the update began a minute ago


def updated(policy: UpdatePolicy, replicas: int = 4, **kw: object) -> Service:
    """Version 2 of a service whose tasks run version 1, rolled over by ``policy``."""
    svc = service(replicas, version=2)
    svc = replace(svc, spec=replace(svc.spec, update=policy), rolled_at=ROLLED, updated_at=ROLLED,
                  previous=service(replicas).spec)  # fmt: skip
    return replace(svc, **kw)


def old(n: int) -> list[Task]:
    return [task(f"o{i}", i, f"n{1 + i % 3}") for i in range(1, n + 1)]


def new(task_id: str, slot: int, state: TaskState = TaskState.RUNNING,
        started: float | None = 50, ended: float | None = None) -> Task:  # fmt: skip
    """A task of version 2, made 55 s ago, started ``started`` s ago (None: never), its last
    change ``ended`` s ago (default: when it started)."""
    made = task(task_id, slot, version=2, state=state, age=55)
    last = ended if ended is not None else (started if started is not None else 55)
    return replace(made, started_at=iso(started) if started is not None else "",
                   updated_at=iso(last))  # fmt: skip


def halts(actions: list[object]) -> list[HaltUpdate]:
    return [a for a in actions if isinstance(a, HaltUpdate)]


def test_parallelism_replaces_that_many_at_once_and_zero_all() -> None:
    two = plan_service(updated(UpdatePolicy(parallelism=2)), old(4), NODES, NOW)
    assert stops(two) == ["o1", "o2"] and starts(two) == [1, 2]
    every = plan_service(updated(UpdatePolicy(parallelism=0)), old(4), NODES, NOW)
    assert stops(every) == ["o1", "o2", "o3", "o4"]
    assert all(a.message == UPDATED for a in every if isinstance(a, StopTask))


def test_the_next_batch_waits_for_the_last_to_run_and_then_the_delay() -> None:
    policy = UpdatePolicy(parallelism=1, delay_s=30)
    starting = [new("n1", 1, TaskState.STARTING, started=None), *old(4)[1:]]
    assert plan_service(updated(policy), starting, NODES, NOW) == []
    ran_recently = [new("n1", 1, started=10), *old(4)[1:]]
    assert plan_service(updated(policy), ran_recently, NODES, NOW) == []  # 10 s < 30 s
    ran_long_ago = [new("n1", 1, started=40), *old(4)[1:]]
    assert stops(plan_service(updated(policy), ran_long_ago, NODES, NOW)) == ["o2"]


def test_start_first_starts_the_new_task_beside_the_old_and_stops_it_once_running() -> None:
    policy = UpdatePolicy(order=UpdateOrder.START_FIRST)
    first = plan_service(updated(policy, replicas=2), old(2), NODES, NOW)
    assert starts(first) == [1] and stops(first) == []  # the old one keeps serving
    beside = [new("n1", 1, TaskState.STARTING, started=None), *old(2)]
    assert stops(plan_service(updated(policy, replicas=2), beside, NODES, NOW)) == []
    running = [new("n1", 1), *old(2)]
    actions = plan_service(updated(policy, replicas=2), running, NODES, NOW)
    assert stops(actions) == ["o1"]  # replaced, and the next batch waits for that
    stop = next(a for a in actions if isinstance(a, StopTask))
    assert stop.message == UPDATED


def test_stop_first_never_runs_two_tasks_in_a_slot() -> None:
    both = [new("n1", 1, TaskState.STARTING, started=None), *old(2)]
    assert stops(plan_service(updated(UpdatePolicy(), replicas=2), both, NODES, NOW)) == ["o1"]


def _failed(started: float | None, ended: float) -> Task:
    made = new(
        "f1", 1, TaskState.FAILED, started=started if started is not None else 0, ended=ended
    )
    return made if started is not None else replace(made, started_at="")


def test_a_new_task_failing_within_the_monitor_pauses_the_update() -> None:
    tasks = [_failed(started=20, ended=18), *old(4)[1:]]
    actions = plan_service(updated(UpdatePolicy(monitor_s=5)), tasks, NODES, NOW)
    assert halts(actions) == [HaltUpdate("svc", "update paused due to failure or early termination "
                                         "of task f1", rollback=False)]  # fmt: skip
    # one that never ran (rejected: no such image) counts too
    never = [replace(_failed(None, 18), state=TaskState.REJECTED), *old(4)[1:]]
    assert halts(plan_service(updated(UpdatePolicy()), never, NODES, NOW))[0].rollback is False  # type: ignore[union-attr]


def test_a_failure_after_the_monitor_period_or_within_the_ratio_goes_on() -> None:
    late = [_failed(started=50, ended=10), *old(4)[1:]]  # ran 40 s > 5 s monitor
    assert not any(isinstance(a, HaltUpdate) for a in plan_service(updated(UpdatePolicy()), late,
                                                                    NODES, NOW))  # fmt: skip
    tolerated = UpdatePolicy(max_failure_ratio=0.25)  # 1 of 4 failed: 0.25 is not beyond it
    tasks = [_failed(started=20, ended=18), *old(4)[1:]]
    assert not any(isinstance(a, HaltUpdate) for a in plan_service(updated(tolerated), tasks,
                                                                    NODES, NOW))  # fmt: skip
    goes_on = UpdatePolicy(failure_action=FailureAction.CONTINUE)
    assert not any(isinstance(a, HaltUpdate) for a in plan_service(updated(goes_on), tasks,
                                                                    NODES, NOW))  # fmt: skip


def test_failure_action_rollback_rolls_back_and_a_rollback_only_pauses() -> None:
    tasks = [_failed(started=20, ended=18), *old(4)[1:]]
    policy = UpdatePolicy(failure_action=FailureAction.ROLLBACK)
    [halt] = halts(plan_service(updated(policy), tasks, NODES, NOW))
    assert isinstance(halt, HaltUpdate) and halt.rollback
    assert halt.message == "update rolled back due to failure or early termination of task f1"
    rolling_back = updated(policy, rolled_back=True)  # its RollbackConfig: pause by default
    [halt] = halts(plan_service(rolling_back, tasks, NODES, NOW))
    assert isinstance(halt, HaltUpdate) and not halt.rollback
    assert halt.message.startswith("rollback paused due to failure")


def test_a_paused_update_does_nothing_more_and_says_why() -> None:
    paused = updated(UpdatePolicy(), update_paused=True, update_halted="update paused due to X")
    tasks = [_failed(started=20, ended=18), *old(4)[1:]]
    planned = plan_service(paused, tasks, NODES, NOW)
    assert not halts(planned)
    assert not [a for a in planned if isinstance(a, StopTask) and a.message == UPDATED]
    assert update_state(paused, updating=True) == ("paused", "update paused due to X")
    auto = updated(UpdatePolicy(), rolled_back=True, update_halted="update rolled back due to Y")
    assert update_state(auto, updating=True) == ("rollback_started", "update rolled back due to Y")
    assert update_state(auto, updating=False) == ("rollback_completed", "rollback completed")


def test_a_new_service_s_failures_are_no_update_s() -> None:
    fresh = service(2)  # never rolled over: a failed task is restarted, nothing halts
    failed = replace(task("f1", 1, state=TaskState.FAILED), started_at=iso(20), updated_at=iso(18))
    actions = plan_service(fresh, [failed, task("t2", 2)], NODES, NOW)
    assert not any(isinstance(a, HaltUpdate) for a in actions)
    assert any(isinstance(a, StartTask) for a in actions)


def test_a_rollback_keeps_the_tasks_that_never_changed() -> None:
    """Rolled back to version 3 (= version 1's spec): the version-1 tasks that were never
    updated stay and count as current; the failed update's task is replaced."""
    back = updated(UpdatePolicy(), replicas=3, rolled_back=True, spec_version=3)
    failed_update = replace(new("u1", 1), template=ContainerTemplate("tools", ("false",)))
    tasks = [failed_update, *old(3)[1:]]
    actions = plan_service(back, tasks, NODES, NOW)
    adopted = sorted(a.task_id for a in actions if isinstance(a, AdoptTask))
    assert adopted == ["o2", "o3"]
    assert stops(actions) == ["u1"]  # version 2: its template differs
    forced = updated(UpdatePolicy(), replicas=3, spec_version=3)  # update --force: same template
    assert not [a for a in plan_service(forced, old(3), NODES, NOW) if isinstance(a, AdoptTask)]
