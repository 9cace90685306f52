"""Services → tasks: what the leader must change so each service has what it asks for.

Design notes. ``plan_service`` is a pure function of one service, its tasks and the nodes; it
returns actions (start a task in a slot or on a node, shut one down, forget an old one), never
touching the store. It is level-triggered: called again with the same state it returns the
same actions, so the leader can recompute from scratch after any change or failure.

- Replicated: slots 1..replicas each want one live task. A slot whose last task ended by
  itself is refilled according to the restart condition, after the restart delay; a slot whose
  task was lost (its node down, removed or drained) is refilled at once. Slots above the
  replica count are shut down (highest first, by construction).
- Global: one live task per eligible node; tasks on nodes that no longer qualify stop. A task
  that ended by itself is replaced by the restart condition after the restart delay, as a
  replicated slot's is.
- Rolling update: tasks of an older spec version are replaced by the service's UpdateConfig
  (RollbackConfig while it rolls back): see rollout.py.
- History: a few finished tasks per slot stay for ``service ps``; older ones are forgotten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ferry.manager import rollout
from ferry.manager.rollout import HaltUpdate
from ferry.manager.scheduler import Candidate, eligible, parse_constraint
from ferry.model.node import Availability
from ferry.model.service import (
    TASK_HISTORY,
    Mode,
    RestartCondition,
    Service,
    Task,
    TaskState,
)
from ferry.model.times import epoch

RESTART_DELAY_S = 5.0  # Docker's default RestartPolicy.Delay; each service carries its own


@dataclass(frozen=True)
class StartTask:
    svc_id: str
    slot: int
    node_id: str = ""  # global services: the node; replicated: chosen by the scheduler


@dataclass(frozen=True)
class StopTask:
    task_id: str
    message: str
    state: TaskState | None = None  # set for tasks that cannot report back (node gone)


@dataclass(frozen=True)
class ForgetTask:
    task_id: str


@dataclass(frozen=True)
class RetireTask:
    """A task that ended by itself is superseded: wanted no more, its record kept as it is."""

    task_id: str


@dataclass(frozen=True)
class AdoptTask:
    """During a rollback, a task of an older spec version that already runs what the current
    spec asks, on a node the spec allows (it was never updated): it counts as current instead
    of being replaced, as swarmkit replaces only tasks whose spec differs."""

    task_id: str
    spec_version: int


Action = StartTask | StopTask | ForgetTask | RetireTask | HaltUpdate | AdoptTask


def _age_s(iso: str, now: float) -> float:
    if not iso:
        return float("inf")
    return now - epoch(iso)


def _restarts(last: Task, condition: RestartCondition) -> bool:
    if last.desired != TaskState.RUNNING:
        return True  # we stopped it (update, scale, node lost): the slot is refilled
    if condition == RestartCondition.ANY:
        return True
    if condition == RestartCondition.ON_FAILURE:
        return last.state in (TaskState.FAILED, TaskState.REJECTED)
    return False


def _lost_reason(task: Task, nodes: dict[str, Candidate]) -> tuple[str, TaskState] | None:
    """Why a live task no longer counts: its node is gone, down or drained."""
    candidate = nodes.get(task.node_id) if task.node_id else None
    if not task.node_id:
        return None
    if candidate is None or candidate.node.left:
        return "node removed from the swarm", TaskState.ORPHANED
    if candidate.lost:
        return "node is down", TaskState.ORPHANED
    if candidate.node.availability == Availability.DRAIN:
        return "node is drained", TaskState.SHUTDOWN
    return None


def _split_lost(
    tasks: list[Task], by_node: dict[str, Candidate]
) -> tuple[list[Action], list[Task]]:
    """Live tasks whose node was lost (to stop) and the live tasks that still count."""
    stops: list[Action] = []
    counted: list[Task] = []
    for task in tasks:
        if not task.live:
            continue
        lost = _lost_reason(task, by_node)
        if lost is not None:
            stops.append(StopTask(task.task_id, lost[0], lost[1]))
        else:
            counted.append(task)
    return stops, counted


def plan_service(
    service: Service,
    tasks: list[Task],
    nodes: Iterable[Candidate],
    now: float,
    history: int = TASK_HISTORY,
) -> list[Action]:
    """``history``: finished tasks kept per slot (the swarm's TaskHistoryRetentionLimit; a
    negative one keeps them all)."""
    by_node = {c.node.node_id: c for c in nodes}
    actions, counted = _split_lost(tasks, by_node)
    if service.spec.mode == Mode.GLOBAL:
        actions += _plan_global(service, tasks, counted, by_node, now)
    else:
        actions += _plan_replicated(service, tasks, counted, now)
    adopted = _adoptable(service, counted, by_node)
    actions += [AdoptTask(t.task_id, service.spec_version) for t in adopted]
    ids = {t.task_id for t in adopted}
    current = [replace(t, spec_version=service.spec_version) if t.task_id in ids else t
               for t in counted]  # fmt: skip
    actions += _rolling_update(service, tasks, current, actions, now)
    actions += _forget_history(tasks, history)
    return actions


@dataclass(frozen=True)
class Progress:
    """How far a service is from what it asks for, as ``service ls`` and the CLI show it."""

    running: int  # tasks running that are meant to run
    desired: int  # replicas, or the nodes a global service belongs on
    updating: bool  # some task that counts still runs an older spec version


def update_state(service: Service, updating: bool) -> tuple[str, str] | None:
    """Docker's UpdateStatus (State, Message) of the last change that rolled the tasks over, or
    of a rollback, with swarmkit's states and messages (a manual rollback starts as "manually
    requested rollback"; a paused one says why); None when the last change did not roll them
    over (a later scale or label change clears it, as in Docker). ``updating``:
    ``Progress.updating``."""
    if not service.rolled_at or service.rolled_at != service.updated_at:
        return None
    if service.update_paused:
        state = "rollback_paused" if service.rolled_back else "paused"
        return state, service.update_halted
    if service.rolled_back:
        if updating:
            return "rollback_started", service.update_halted or "manually requested rollback"
        return "rollback_completed", "rollback completed"
    return ("updating", "update in progress") if updating else ("completed", "update completed")


def progress(service: Service, tasks: list[Task], nodes: Iterable[Candidate]) -> Progress:
    by_node = {c.node.node_id: c for c in nodes}
    _stops, counted = _split_lost(tasks, by_node)
    running = sum(1 for t in tasks if t.serving)
    if service.spec.mode == Mode.GLOBAL:
        desired = len(_global_nodes(service, counted, by_node))
    else:
        desired = service.spec.replicas
    updating = any(t.spec_version < service.spec_version for t in counted)
    if not updating and service.rolled_at and service.rolled_at == service.updated_at:
        # swarmkit reports an update complete only once every slot runs the new spec: the
        # docker CLI stops waiting at "completed"
        version = service.spec_version
        current = sum(1 for t in counted
                      if t.spec_version == version and t.state == TaskState.RUNNING)  # fmt: skip
        updating = current < desired
    return Progress(running, desired, updating)


def _plan_replicated(
    service: Service, tasks: list[Task], live: list[Task], now: float
) -> list[Action]:
    actions: list[Action] = []
    live_by_slot: dict[int, list[Task]] = defaultdict(list)
    for task in live:
        live_by_slot[task.slot].append(task)
    history: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        history[task.slot].append(task)
    for slot in range(1, service.spec.replicas + 1):
        current = sorted(live_by_slot.get(slot, []), key=lambda t: t.created_at)
        extras, why = rollout.superseded(service, current)  # never two for long in one slot
        actions += [StopTask(extra.task_id, why) for extra in extras]
        if current:
            continue
        past = sorted(history.get(slot, []), key=lambda t: t.created_at)
        last = past[-1] if past else None
        if last is None:
            actions.append(StartTask(service.svc_id, slot))
        elif last.live:
            actions.append(StartTask(service.svc_id, slot))  # its node was lost
        elif _restarts(last, service.spec.restart):
            waited = _age_s(last.updated_at, now)
            if last.desired != TaskState.RUNNING or waited >= service.spec.restart_delay_s:
                actions.append(StartTask(service.svc_id, slot))
                if last.desired == TaskState.RUNNING:
                    actions.append(RetireTask(last.task_id))
    for slot, current in live_by_slot.items():
        if slot > service.spec.replicas:
            actions += [StopTask(t.task_id, "service scaled down") for t in current]
    return actions


def _global_nodes(service: Service, live: list[Task], nodes: dict[str, Candidate]) -> set[str]:
    """Where a global service belongs: every eligible node, and paused nodes keep their task."""
    constraints = [parse_constraint(c, strict=False) for c in service.spec.constraints]
    wanted, _reason = eligible(nodes.values(), constraints)
    paused = {n for n, c in nodes.items() if c.up and c.node.availability == Availability.PAUSE}
    return {n.node_id for n in wanted} | {t.node_id for t in live if t.node_id in paused}


def _plan_global(
    service: Service, tasks: list[Task], live: list[Task], nodes: dict[str, Candidate], now: float
) -> list[Action]:
    actions: list[Action] = []
    belongs = _global_nodes(service, live, nodes)
    covered: dict[str, list[Task]] = defaultdict(list)
    for task in sorted(live, key=lambda t: t.created_at):
        if task.node_id in belongs:
            covered[task.node_id].append(task)
        else:
            actions.append(StopTask(task.task_id, "node no longer eligible"))
    for group in covered.values():
        extras, why = rollout.superseded(service, group)
        actions += [StopTask(extra.task_id, why) for extra in extras]
    last_on: dict[str, Task] = {}
    for task in sorted(tasks, key=lambda t: t.created_at):
        if task.slot == 0 and task.node_id:
            last_on[task.node_id] = task
    for node_id in sorted(belongs - set(covered)):
        last = last_on.get(node_id)
        if last is None or last.live or last.desired != TaskState.RUNNING:
            actions.append(StartTask(service.svc_id, 0, node_id))
        elif _restarts(last, service.spec.restart) and _age_s(last.updated_at, now) >= (
            service.spec.restart_delay_s
        ):
            # ended by itself (failed, rejected: an image no registry has): as a replicated
            # slot, restarted after the delay, never at every pass
            actions += [StartTask(service.svc_id, 0, node_id), RetireTask(last.task_id)]
    return actions


def _adoptable(service: Service, live: list[Task], by_node: dict[str, Candidate]) -> list[Task]:
    """While rolling back: older tasks running the current template on a node the current
    constraints allow (never otherwise: ``update --force`` replaces tasks whose template did
    not change, on purpose)."""
    if not service.rolled_back:
        return []
    older = [t for t in live if t.spec_version < service.spec_version
             and t.template == service.spec.template]  # fmt: skip
    if not older:
        return []
    constraints = [parse_constraint(c, strict=False) for c in service.spec.constraints]
    allowed, _reason = eligible(by_node.values(), constraints)
    ids = {n.node_id for n in allowed}
    return [t for t in older if t.node_id in ids]


def _rolling_update(
    service: Service, tasks: list[Task], live: list[Task], planned: list[Action], now: float
) -> list[Action]:
    """The roll-over's next step (rollout.py): a halt when new tasks failed beyond the
    policy, else the next batch once the missing tasks are filled."""
    if service.spec.mode == Mode.GLOBAL:
        total = len({t.node_id for t in tasks if t.live}) or 1
    else:
        total = service.spec.replicas or 1
    halted = rollout.halt(service, tasks, total, now)
    if halted is not None:
        return [halted]
    if any(isinstance(a, StartTask) for a in planned):
        return []  # fill missing tasks first
    stopping = {a.task_id for a in planned if isinstance(a, StopTask)}
    actions: list[Action] = []
    for task, stop_first in rollout.next_batch(service, live, stopping, now):
        if stop_first:
            actions.append(StopTask(task.task_id, rollout.UPDATED))
        actions.append(StartTask(service.svc_id, task.slot, task.node_id if task.slot == 0 else ""))
    return actions


def _forget_history(tasks: list[Task], history: int) -> list[Action]:
    if history < 0:
        return []
    finished: dict[tuple[int, str], list[Task]] = defaultdict(list)
    for task in tasks:
        if task.state.terminal:
            finished[(task.slot, task.node_id if task.slot == 0 else "")].append(task)
    actions: list[Action] = []
    for group in finished.values():
        group.sort(key=lambda t: t.created_at)
        actions += [ForgetTask(t.task_id) for t in group[: max(0, len(group) - history)]]
    return actions


def plan_orphans(tasks: Iterable[Task], services: set[str]) -> list[Action]:
    """Tasks of removed services: stop the live ones, forget the finished ones."""
    actions: list[Action] = []
    for task in tasks:
        if task.svc_id in services:
            continue
        if task.state.terminal:
            actions.append(ForgetTask(task.task_id))
        elif task.desired == TaskState.RUNNING:
            actions.append(StopTask(task.task_id, "service removed"))
    return actions
