"""The leader's loop: keep every service's tasks equal to what the service asks for.

Each pass plans every service from the mirror (``orchestrator.plan_service``), places new and
pending tasks (``scheduler``), reserves their addresses, and commits — then waits for its own
writes to reach the mirror before the next pass, so it never plans twice from stale state.
Passes run on any change of services, tasks, nodes or sessions, and once a second (restart
delays are measured in time, not in events). A failed pass is simply retried: plans are
recomputed from scratch each time.

One service never holds up the others: a task that cannot be placed (no node, no free
address, an invalid constraint) stays Pending with the reason ``service ps`` shows, written
once, and the pass goes on; a service whose planning fails outright is set aside with a
growing back-off (logged once per attempt) while every other service is planned as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace

from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError, InvalidArgument, PoolExhausted
from ferry.manager.feed import StoreFeed
from ferry.manager.networks import AttachRequest, NetworkOps, release_ops
from ferry.manager.orchestrator import (
    Action,
    AdoptTask,
    ForgetTask,
    RetireTask,
    StartTask,
    StopTask,
    plan_orphans,
    plan_service,
)
from ferry.manager.rollout import HaltUpdate
from ferry.manager.scheduler import (
    Candidate,
    Load,
    choose,
    eligible,
    parse_constraint,
    reserves,
)
from ferry.manager.scheduler import candidates as node_candidates
from ferry.manager.store import Delete, Expect, Put, Store, keys
from ferry.manager.store.schema import LeaderRecord
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode
from ferry.model.ids import new_object_id
from ferry.model.network import Endpoint, EndpointKind
from ferry.model.service import (
    TASK_HISTORY,
    EndpointMode,
    Mode,
    PortSpec,
    PublishMode,
    Service,
    Task,
    TaskState,
)
from ferry.model.times import now_iso
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.manager.reconciler")

Group = tuple[list[Put | Delete], list[Expect]]  # writes that must commit together
TICK_S = 1.0
MAX_OPS = 120  # etcd refuses transactions above 128 operations
BACKOFF_S = (1.0, 30.0)  # a failing service is retried after 1 s, doubling up to 30 s


class ServiceReconciler(Reconciler):
    name = "service reconcile"
    retry_s = 0.2
    watched = (keys.SERVICES, keys.TASKS, keys.NODES, keys.SESSIONS, keys.LEADER)

    def __init__(
        self,
        store: Store,
        view: ClusterView,
        feed: StoreFeed,
        networks: NetworkOps,
        *,
        term: Callable[[], LeaderRecord | None] = lambda: None,
        fence: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``term``: the leader record this manager wrote when it took office; nothing is
        planned until the mirror shows it (so the new term's grace period is in force).
        ``fence``: the store revision of that record; every commit expects it, so a leader
        that was replaced (and has not noticed yet) writes nothing (0: no fence).
        ``clock``: seconds since the epoch, which restart delays are measured against."""
        super().__init__(view.mirror)
        self._clock = clock
        self._term = term
        self._fence = fence
        self._store = store
        self._view = view
        self._feed = feed
        self._networks = networks
        self._ticker: asyncio.Task[None] | None = None
        # per pass: addresses taken per network (so tasks placed together differ), tasks'
        # endpoints by owner, nodes where a service's host ports are busy
        self._taken: dict[str, set[str]] = {}
        self._owned: dict[str, list[Endpoint]] | None = None
        self._busy: dict[str, dict[str, set[str]]] = {}
        self._backoff: dict[str, tuple[float, float]] = {}  # svc id -> (retry at, delay)
        self.passes = 0

    def start(self) -> None:
        super().start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def close(self) -> None:
        await cancel_and_wait([self._ticker])

    async def _tick(self) -> None:
        while True:  # restart delays are measured in time, not in events
            await asyncio.sleep(TICK_S)
            self.mark()

    # one pass --------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        term = self._term()
        if term is not None and self._view.mirror.obj(keys.LEADER, LeaderRecord) != term:
            return  # the mirror has not seen this term begin: liveness would read the last's
        self.passes += 1
        self._taken = {}
        self._owned = None
        self._busy = {}
        now = self._clock()
        candidates = node_candidates(self._view.nodes(), self._view.status)
        services = {s.svc_id: s for s in self._view.services()}
        tasks = self._view.tasks()
        by_service: dict[str, list[Task]] = {}
        for task in tasks:
            by_service.setdefault(task.svc_id, []).append(task)
        load = Load()
        for task in tasks:
            if task.live and task.node_id:
                load.add(task.node_id, False, reserves(task.template))
        groups: list[Group] = []
        for svc in services.values():
            svc_tasks = by_service.get(svc.svc_id, [])
            svc_load = Load(self._count(svc_tasks), dict(load.total))
            planned = self._plan_one(svc, svc_tasks, candidates, svc_load, now)
            if planned is not None:
                groups += planned
                load.total = svc_load.total
        for action in plan_orphans(tasks, set(services)):
            groups.append(self._apply(None, action, candidates, load))
        await self._commit([g for g in groups if g[0]])

    def _history(self) -> int:
        cluster = self._view.cluster()
        return cluster.task_history if cluster is not None else TASK_HISTORY

    def _plan_one(
        self, svc: Service, tasks: list[Task], candidates: list[Candidate], load: Load, now: float
    ) -> list[Group] | None:
        """One service's writes; None while it is set aside after a failure (see BACKOFF_S)."""
        retry_at, delay_s = self._backoff.get(svc.svc_id, (0.0, 0.0))
        if now < retry_at:
            return None
        try:
            groups = [
                self._apply(svc, action, candidates, load)
                for action in plan_service(svc, tasks, candidates, now, self._history())
            ]
            for task in tasks:  # tasks waiting for a node are placed again on every pass
                if task.live and task.state == TaskState.PENDING:
                    groups.append(self._place(svc, task, self._pin(svc, task), candidates, load))
        except FerryError as exc:
            delay_s = min(max(delay_s * 2, BACKOFF_S[0]), BACKOFF_S[1])
            self._backoff[svc.svc_id] = (now + delay_s, delay_s)
            log.warning(
                "service set aside after a failed plan",
                extra=kv(service=svc.spec.name, error=exc, retry_s=delay_s),
            )
            return None
        self._backoff.pop(svc.svc_id, None)
        return groups

    @staticmethod
    def _pin(svc: Service, task: Task) -> str:
        """The node a task must run on: a global service's task belongs to its node."""
        return task.node_id if svc.spec.mode == Mode.GLOBAL else ""

    def _count(self, tasks: list[Task]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in tasks:
            if task.live and task.node_id:
                counts[task.node_id] = counts.get(task.node_id, 0) + 1
        return counts

    async def _commit(self, groups: list[Group]) -> None:
        """Commit in transactions of at most MAX_OPS operations, never splitting a group (a
        task and its address reservations land together or not at all)."""
        committed = None
        fence = self._fence()
        office = [Expect(keys.LEADER, fence)] if fence else []
        batch: list[Put | Delete] = []
        batch_expect: list[Expect] = []
        for ops, expect in [*groups, ([], [])]:
            if batch and (not ops or len(batch) + len(ops) > MAX_OPS):
                revision = await self._store.commit(batch, batch_expect + office)
                if revision is None:
                    log.info("a reservation raced another writer; replanning")
                    self.mark()
                    break
                committed = revision
                batch, batch_expect = [], []
            batch += ops
            batch_expect += expect
        # also after a lost race: the next pass must see the batches that did land, or it
        # would plan them a second time (a slot started twice)
        if committed is not None:
            await self._feed.wait_for(committed)

    # actions ---------------------------------------------------------------------------------
    def _apply(
        self, svc: Service | None, action: Action, candidates: list[Candidate], load: Load
    ) -> Group:
        if isinstance(action, StartTask):
            assert svc is not None
            return self._start(svc, action, candidates, load)
        if isinstance(action, HaltUpdate):
            return self._halt(action)
        if isinstance(action, AdoptTask):
            return self._adopt(action)
        if isinstance(action, ForgetTask):
            return [Delete(keys.task(action.task_id)), *self._release(action.task_id)], []
        if isinstance(action, RetireTask):
            return self._retire(action)
        return self._stop(action, load if svc is not None else None)

    def _adopt(self, action: AdoptTask) -> Group:
        task = self._view.task(action.task_id)
        if task is None:
            return [], []
        key = keys.task(task.task_id)
        adopted = replace(task, spec_version=action.spec_version)
        return [Put(key, encode(adopted))], [Expect(key, self._view.entity_version(key))]

    def _retire(self, action: RetireTask) -> Group:
        done = self._view.task(action.task_id)
        if done is None:
            return [], []
        retired = replace(done, desired=TaskState.SHUTDOWN)
        return [Put(keys.task(done.task_id), encode(retired))], []

    def _stop(self, action: StopTask, load: Load | None) -> Group:
        task = self._view.task(action.task_id)
        if task is None:
            return [], []
        if load is not None and task.live and task.node_id:
            load.drop(task.node_id, True, reserves(task.template))
        stopped = replace(
            task, desired=TaskState.SHUTDOWN, message=action.message, updated_at=now_iso()
        )
        ops: list[Put | Delete] = []
        final = action.state
        if final is None and task.state in (TaskState.NEW, TaskState.PENDING):
            final = TaskState.SHUTDOWN  # it never reached a node: nobody else would say so
        if final is not None:
            stopped = replace(stopped, state=final)
            ops += self._release(task.task_id)
        return [Put(keys.task(task.task_id), encode(stopped)), *ops], []

    def _start(
        self, svc: Service, action: StartTask, candidates: list[Candidate], load: Load
    ) -> Group:
        task = Task(
            task_id=new_object_id(),
            svc_id=svc.svc_id,
            service_name=svc.spec.name,
            slot=action.slot,
            template=svc.spec.template,
            spec_version=svc.spec_version,
            # a global task belongs to its node from the start, placed or pending: so the
            # planner knows the node is covered while the task waits (no task per pass)
            node_id=action.node_id,
            created_at=now_iso(),
        )
        return self._place(svc, task, action.node_id, candidates, load)

    def _halt(self, action: HaltUpdate) -> Group:
        """The service's roll-over paused, or turned into a rollback to its previous spec (its
        spec version moves on, so the rollback's tasks replace the failed update's)."""
        svc = self._view.service(action.svc_id)
        if svc is None:
            return [], []
        log.warning("service update halted", extra=kv(service=svc.spec.name, why=action.message))
        if action.rollback and svc.previous is not None:
            now = now_iso()
            halted = replace(
                svc, spec=svc.previous, previous=svc.spec, spec_version=svc.spec_version + 1,
                updated_at=now, rolled_at=now, rolled_back=True, update_halted=action.message,
                update_paused=False,
            )  # fmt: skip
        else:
            halted = replace(svc, update_paused=True, update_halted=action.message)
        key = keys.service(svc.svc_id)
        return [Put(key, encode(halted))], [Expect(key, self._view.entity_version(key))]

    def _task_networks(self, svc: Service) -> list[str]:
        """The service's networks, and the ingress network if it publishes in ingress mode."""
        nets = list(svc.spec.networks)
        if any(p.mode == PublishMode.INGRESS for p in svc.spec.ports):
            ingress = self._networks.ingress()
            if ingress is not None and ingress.net_id not in nets:
                nets.append(ingress.net_id)
        return nets

    def _host_ports_busy(self, svc: Service) -> dict[str, set[str]]:
        """Nodes where one of this service's host-mode ports is taken, and by what: the ids of
        live tasks that publish it there, or "" when the node itself reports it in use."""
        wanted = {(p.protocol, p.published) for p in _host_ports(svc)}
        busy: dict[str, set[str]] = defaultdict(set)
        if not wanted:
            return busy
        for node in self._view.nodes():
            if any(f"{proto}/{port}" in node.ports for proto, port in wanted):
                busy[node.node_id].add("")
        for other in self._view.services():
            theirs = {(p.protocol, p.published) for p in _host_ports(other)}
            if theirs & wanted:
                for t in self._view.tasks(other.svc_id):
                    if t.live and t.node_id:
                        busy[t.node_id].add(t.task_id)
        return busy

    def _release(self, task_id: str) -> list[Put | Delete]:
        if self._owned is None:  # once per pass, not once per task stopped or forgotten
            self._owned = defaultdict(list)
            for ep in self._view.endpoints():
                if ep.kind == EndpointKind.TASK:
                    self._owned[ep.owner_id].append(ep)
        return [op for ep in self._owned.get(task_id, []) for op in release_ops(ep)]

    def _place(
        self,
        svc: Service,
        task: Task,
        node_hint: str,
        candidates: list[Candidate],
        load: Load,
    ) -> Group:
        """Give a new or pending task a node and its addresses (or leave it pending, saying why).
        ``node_hint`` pins the node (global services)."""
        try:
            constraints = [parse_constraint(c, strict=False) for c in svc.spec.constraints]
        except InvalidArgument as exc:
            return _pending(task, str(exc))
        pool = [c for c in candidates if c.node.node_id == node_hint] if node_hint else candidates
        held = self._busy.get(svc.svc_id)
        if held is None:
            held = self._busy[svc.svc_id] = self._host_ports_busy(svc)
        busy = {node_id for node_id, holders in held.items() if holders - {task.task_id}}
        if busy:
            pool = [c for c in pool if c.node.node_id not in busy]
        wants = reserves(svc.spec.template)
        nodes, reason = eligible(pool, constraints, load, wants)
        if not nodes and busy:
            ports = ", ".join(f"{p.published}/{p.protocol}" for p in _host_ports(svc))
            reason = f"no suitable node (host port {ports} taken on every other node)"
        if not nodes:
            return _pending(task, reason)
        node = choose(nodes, load)
        try:
            ops, expect = self._plan_addresses(svc, task, node.node_id)
        except PoolExhausted as exc:
            return _pending(task, str(exc))
        load.add(node.node_id, True, wants)
        if _host_ports(svc):
            held[node.node_id].add(task.task_id)  # no second task of it there in this pass
        placed = replace(
            task,
            node_id=node.node_id,
            state=TaskState.ASSIGNED,
            message="assigned",
            error="",  # the reason it was pending, now gone
            updated_at=now_iso(),
        )
        log.debug("task placed", extra=kv(task=placed.name, node=node.hostname))
        return [Put(keys.task(placed.task_id), encode(placed)), *ops], expect

    def _plan_addresses(
        self, svc: Service, task: Task, node_id: str
    ) -> tuple[list[Put | Delete], list[Expect]]:
        """The task's endpoint on each of its networks, all or none: raises PoolExhausted
        (naming the network) and then takes back the addresses it had set aside this pass."""
        ops: list[Put | Delete] = []
        expect: list[Expect] = []
        chosen: list[tuple[str, str]] = []
        for net_id in self._task_networks(svc):
            network = self._view.network(net_id)
            if network is None:
                continue
            # in dnsrr mode the tasks answer to the service's aliases, else its VIP does
            dnsrr = svc.spec.endpoint_mode == EndpointMode.DNSRR
            req = AttachRequest(
                net=net_id, node_id=node_id, owner_id=task.task_id, name=task.name,
                kind=EndpointKind.TASK, service=svc.spec.name,
                aliases=svc.spec.aliases.get(net_id, ()) if dnsrr else (),
            )  # fmt: skip
            taken = self._taken.get(net_id)
            if taken is None:
                taken = self._taken[net_id] = self._networks.taken_ips(net_id)
            try:
                endpoint, ep_ops, ep_expect = self._networks.plan_endpoint(network, req, taken)
            except PoolExhausted as exc:
                for held_net, ip in chosen:
                    self._taken[held_net].discard(ip)
                raise PoolExhausted(
                    f"no free address on network {network.name} "
                    f"({network.ip_range or network.subnet})"
                ) from exc
            chosen.append((net_id, endpoint.ip))
            ops += ep_ops
            expect += ep_expect
        return ops, expect


# swarmkit's words for a task the scheduler holds back; the reason goes in Status.Err, where
# Docker puts it ("no suitable node (…)") and `docker service ps` shows it under ERROR
PENDING_MESSAGE = "pending task scheduling"


def _pending(task: Task, reason: str) -> Group:
    """Leave a task pending, saying why: written only when the reason is new."""
    if task.state == TaskState.PENDING and task.error == reason:
        return [], []
    pending = replace(
        task, state=TaskState.PENDING, message=PENDING_MESSAGE, error=reason, updated_at=now_iso()
    )
    return [Put(keys.task(task.task_id), encode(pending))], []


def _host_ports(svc: Service) -> list[PortSpec]:
    return [p for p in svc.spec.ports if p.mode == PublishMode.HOST]
