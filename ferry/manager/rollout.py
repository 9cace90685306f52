"""A service's tasks rolling over to its current spec, by its UpdateConfig (or RollbackConfig
while it rolls back): batches of ``parallelism``, ``delay`` between them, ``stop-first`` or
``start-first``, and what to do when the new tasks fail (``failure_action`` beyond
``max_failure_ratio``, counting failures within ``monitor`` of a task's start). Pure: plain
data in, actions out, as the rest of the orchestrator.

The rules follow swarmkit's updater (``manager/orchestrator/update/updater.go``): the next
batch starts once every task of the new spec runs and the delay has passed since the last of
them started; a paused update does nothing until the service is updated again; a failed
update with ``rollback`` returns to the previous spec, rolled over by the RollbackConfig. Its
messages are swarmkit's ("update paused due to failure or early termination of task X").
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.model.service import Service, Task, TaskState
from ferry.model.times import epoch
from ferry.model.update_policy import FailureAction, UpdateOrder, UpdatePolicy

UPDATED = "task updated to a new spec"


@dataclass(frozen=True)
class HaltUpdate:
    """The roll-over met too many failures: pause it, or roll the service back."""

    svc_id: str
    message: str
    rollback: bool


def policy_of(service: Service) -> UpdatePolicy:
    return service.spec.rollback if service.rolled_back else service.spec.update


def superseded(service: Service, group: list[Task]) -> tuple[list[Task], str]:
    """Of the live tasks of one slot (or one node of a global service), oldest first: those
    to stop, and why. Start-first keeps an older spec's task while its replacement (the
    newest, of the current spec) has not reached running."""
    if len(group) < 2:
        return [], ""
    newest, older = group[-1], group[:-1]
    replacing = all(t.spec_version < newest.spec_version for t in older)
    if (
        replacing
        and policy_of(service).order == UpdateOrder.START_FIRST
        and newest.spec_version == service.spec_version
        and newest.state != TaskState.RUNNING
    ):
        return [], ""
    return older, UPDATED if replacing else "duplicate task"


def failed_early(task: Task, monitor_s: float) -> bool:
    """Failed (or rejected) before it ran, or within ``monitor_s`` of starting."""
    if task.state not in (TaskState.FAILED, TaskState.REJECTED):
        return False
    return not task.started_at or epoch(task.updated_at) - epoch(task.started_at) <= monitor_s


def halt(service: Service, tasks: list[Task], total: int, now: float) -> HaltUpdate | None:
    """A halt when this roll-over's new tasks failed beyond its policy; None otherwise, or when
    the last change rolled nothing over (a creation, a scale)."""
    policy = policy_of(service)
    rolling = bool(service.rolled_at) and service.rolled_at == service.updated_at
    if not rolling or service.update_paused or policy.failure_action == FailureAction.CONTINUE:
        return None
    since = epoch(service.rolled_at)
    new = [t for t in tasks if t.spec_version == service.spec_version
           and epoch(t.created_at) >= since]  # fmt: skip
    old_live = any(t.live and t.spec_version < service.spec_version for t in tasks)
    latest = max((epoch(t.started_at) for t in new if t.started_at), default=since)
    if not old_live and now - latest > policy.monitor_s and all(t.started_at for t in new
                                                                 if t.live):  # fmt: skip
        return None  # done, and past its monitor period
    failed = sorted((t for t in new if failed_early(t, policy.monitor_s)),
                    key=lambda t: t.updated_at)  # fmt: skip
    if not failed or len(failed) / max(total, 1) <= policy.max_failure_ratio:
        return None
    what = "rollback" if service.rolled_back else "update"
    task_id = failed[0].task_id
    if policy.failure_action == FailureAction.ROLLBACK and service.previous is not None:
        message = f"update rolled back due to failure or early termination of task {task_id}"
        return HaltUpdate(service.svc_id, message, rollback=True)
    message = f"{what} paused due to failure or early termination of task {task_id}"
    return HaltUpdate(service.svc_id, message, rollback=False)


def next_batch(
    service: Service, live: list[Task], busy: set[str], now: float
) -> list[tuple[Task, bool]]:
    """The older spec's tasks to replace now, each with whether to stop it first; none while
    paused, while a task of the current spec has not reached running, or before the delay has
    passed since the last of them started. ``busy``: tasks already being stopped."""
    if service.update_paused:
        return []
    policy = policy_of(service)
    current = [t for t in live if t.spec_version == service.spec_version]
    if any(t.state != TaskState.RUNNING for t in current):
        return []  # the previous batch has not converged yet
    old = sorted(
        (t for t in live if t.spec_version < service.spec_version and t.task_id not in busy),
        key=lambda t: (t.slot, t.node_id),
    )
    if not old:
        return []
    since = epoch(service.rolled_at) if service.rolled_at else 0.0
    started = [
        epoch(t.started_at) for t in current if t.started_at and epoch(t.created_at) >= since
    ]
    if policy.delay_s and started and now - max(started) < policy.delay_s:
        return []
    batch = old[: policy.parallelism or len(old)]
    stop_first = policy.order == UpdateOrder.STOP_FIRST
    return [(task, stop_first) for task in batch]
