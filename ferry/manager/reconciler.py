"""The leader's loop: keep every service's tasks equal to what the service asks for.

Each pass plans every service from the mirror (``orchestrator.plan_service``), places new and
pending tasks (``scheduler``), reserves their addresses, and commits — then waits for its own
writes to reach the mirror before the next pass, so it never plans twice from stale state.
Passes run on any change of services, tasks, nodes or sessions, and once a second (restart
delays are measured in time, not in events). A failed pass is simply retried: plans are
recomputed from scratch each time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import replace

from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.manager.feed import StoreFeed
from ferry.manager.networks import AttachRequest, NetworkOps, release_ops
from ferry.manager.orchestrator import (
    Action,
    ForgetTask,
    RetireTask,
    StopTask,
    plan_orphans,
    plan_service,
)
from ferry.manager.scheduler import Candidate, Load, choose, eligible, parse_constraint
from ferry.manager.scheduler import candidates as node_candidates
from ferry.manager.store import Delete, Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import encode
from ferry.model.ids import new_object_id
from ferry.model.network import Endpoint, EndpointKind
from ferry.model.service import PortSpec, PublishMode, Service, Task, TaskState
from ferry.model.times import now_iso
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.manager.reconciler")

Group = tuple[list[Put | Delete], list[Expect]]  # writes that must commit together
TICK_S = 1.0
MAX_OPS = 120  # etcd refuses transactions above 128 operations


class ServiceReconciler(Reconciler):
    name = "service reconcile"
    retry_s = 0.2
    watched = (keys.SERVICES, keys.TASKS, keys.NODES, keys.SESSIONS)

    def __init__(
        self, store: Store, view: ClusterView, feed: StoreFeed, networks: NetworkOps
    ) -> None:
        super().__init__(view.mirror)
        self._store = store
        self._view = view
        self._feed = feed
        self._networks = networks
        self._ticker: asyncio.Task[None] | None = None
        # per pass: addresses taken per network (so tasks placed together differ), tasks'
        # endpoints by owner, nodes where a service's host ports are busy
        self._taken: dict[str, set[str]] = {}
        self._owned: dict[str, list[Endpoint]] | None = None
        self._busy: dict[str, set[str]] = {}
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
        self.passes += 1
        self._taken = {}
        self._owned = None
        self._busy = {}
        now = time.time()
        candidates = node_candidates(self._view.nodes(), self._view.is_up)
        services = {s.svc_id: s for s in self._view.services()}
        tasks = self._view.tasks()
        by_service: dict[str, list[Task]] = {}
        for task in tasks:
            by_service.setdefault(task.svc_id, []).append(task)
        load = Load()
        for task in tasks:
            if task.live and task.node_id:
                load.add(task.node_id, False)
        groups: list[Group] = []
        for svc in services.values():
            svc_tasks = by_service.get(svc.svc_id, [])
            svc_load = Load(self._count(svc_tasks), dict(load.total))
            for action in plan_service(svc, svc_tasks, candidates, now):
                groups.append(self._apply(svc, action, candidates, svc_load))
            for task in svc_tasks:  # tasks waiting for a node are placed again on every pass
                if task.live and task.state == TaskState.PENDING:
                    groups.append(self._place(svc, task, "", candidates, svc_load))
            load.total = svc_load.total
        for action in plan_orphans(tasks, set(services)):
            groups.append(self._apply(None, action, candidates, load))
        await self._commit([g for g in groups if g[0]])

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
        batch: list[Put | Delete] = []
        batch_expect: list[Expect] = []
        for ops, expect in [*groups, ([], [])]:
            if batch and (not ops or len(batch) + len(ops) > MAX_OPS):
                revision = await self._store.commit(batch, batch_expect)
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
        if isinstance(action, ForgetTask):
            return [Delete(keys.task(action.task_id)), *self._release(action.task_id)], []
        if isinstance(action, RetireTask):
            done = self._view.task(action.task_id)
            if done is None:
                return [], []
            retired = replace(done, desired=TaskState.SHUTDOWN)
            return [Put(keys.task(done.task_id), encode(retired))], []
        if isinstance(action, StopTask):
            task = self._view.task(action.task_id)
            if task is None:
                return [], []
            stopped = replace(
                task, desired=TaskState.SHUTDOWN, message=action.message, updated_at=now_iso()
            )
            ops: list[Put | Delete] = []
            if action.state is not None:
                stopped = replace(stopped, state=action.state)
                ops += self._release(task.task_id)
            return [Put(keys.task(task.task_id), encode(stopped)), *ops], []
        assert svc is not None
        task = Task(
            task_id=new_object_id(),
            svc_id=svc.svc_id,
            service_name=svc.spec.name,
            slot=action.slot,
            template=svc.spec.template,
            spec_version=svc.spec_version,
            created_at=now_iso(),
        )
        return self._place(svc, task, action.node_id, candidates, load)

    def _task_networks(self, svc: Service) -> list[str]:
        """The service's networks, and the ingress network if it publishes in ingress mode."""
        nets = list(svc.spec.networks)
        if any(p.mode == PublishMode.INGRESS for p in svc.spec.ports):
            ingress = self._networks.ingress()
            if ingress is not None and ingress.net_id not in nets:
                nets.append(ingress.net_id)
        return nets

    def _host_ports_busy(self, svc: Service) -> set[str]:
        """Nodes where one of this service's host-mode ports is already taken."""
        wanted = {(p.protocol, p.published) for p in _host_ports(svc)}
        if not wanted:
            return set()
        busy = {
            n.node_id
            for n in self._view.nodes()
            if any(f"{proto}/{port}" in n.ports for proto, port in wanted)
        }
        for other in self._view.services():
            theirs = {(p.protocol, p.published) for p in _host_ports(other)}
            if theirs & wanted:
                busy |= {t.node_id for t in self._view.tasks(other.svc_id) if t.live and t.node_id}
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
        constraints = [parse_constraint(c, strict=False) for c in svc.spec.constraints]
        pool = [c for c in candidates if c.node.node_id == node_hint] if node_hint else candidates
        busy = self._busy.get(svc.svc_id)
        if busy is None:
            busy = self._busy[svc.svc_id] = self._host_ports_busy(svc)
        if busy:
            pool = [c for c in pool if c.node.node_id not in busy]
        nodes, reason = eligible(pool, constraints, svc.spec.template.image)
        if not nodes and busy:
            ports = ", ".join(f"{p.published}/{p.protocol}" for p in _host_ports(svc))
            reason = f"no suitable node (host port {ports} taken on every other node)"
        if not nodes:
            if task.state == TaskState.PENDING and task.message == reason:
                return [], []  # still pending for the same reason: nothing to write
            pending = replace(task, state=TaskState.PENDING, message=reason, updated_at=now_iso())
            return [Put(keys.task(task.task_id), encode(pending))], []
        node = choose(nodes, load)
        load.add(node.node_id, True)
        task = replace(
            task,
            node_id=node.node_id,
            state=TaskState.ASSIGNED,
            message="assigned",
            updated_at=now_iso(),
        )
        ops: list[Put | Delete] = [Put(keys.task(task.task_id), encode(task))]
        expect: list[Expect] = []
        for net_id in self._task_networks(svc):
            network = self._view.network(net_id)
            if network is None:
                continue
            req = AttachRequest(
                net=net_id, node_id=node.node_id, owner_id=task.task_id, name=task.name,
                kind=EndpointKind.TASK, service=svc.spec.name,
            )  # fmt: skip
            taken = self._taken.get(net_id)
            if taken is None:
                taken = self._taken[net_id] = self._networks.taken_ips(net_id)
            _ep, ep_ops, ep_expect = self._networks.plan_endpoint(network, req, taken)
            ops += ep_ops
            expect += ep_expect
        log.debug("task placed", extra=kv(task=task.name, node=node.hostname))
        return ops, expect


def _host_ports(svc: Service) -> list[PortSpec]:
    return [p for p in svc.spec.ports if p.mode == PublishMode.HOST]
