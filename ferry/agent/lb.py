"""Keeps every local container's VIP table equal to the running tasks behind each VIP.

Design notes. One nftables context per container namespace, owned by the kernel thread. On any
change of tasks, endpoints or services the wanted table of each running container is
re-rendered (``network.lb``) — once per distinct set of networks, not per container — and
applied only where its text changed, as one atomic transaction. A container gets its table
before its command starts (``prepare``), so its first connection to a VIP already balances.
Cost: one nft transaction per container whose view changed (~0.2 ms for a few VIPs, 3-5 ms for
100); nothing for the others. Be aware: with many VIPs and many local containers a change costs
tens of milliseconds per host; updating one VIP's map in place would be the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ferry.kernel import nsfs
from ferry.kernel.nft import Nft, replace_table
from ferry.kernel.thread import KernelThread
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.container import Container
from ferry.network.lb import TABLE, plan_vips, render
from ferry.reconcile import Reconciler


class VipBalancer(Reconciler):
    name = "VIP reconcile"
    retry_s = 0.5
    watched = (keys.TASKS, keys.ENDPOINTS)

    def __init__(
        self, kernel: KernelThread, view: ClusterView, containers: Callable[[], list[Container]]
    ) -> None:
        super().__init__(view.mirror)
        self._kernel = kernel
        self._view = view
        self._containers = containers
        self._applied: dict[str, str] = {}  # container id -> table body in force
        self._contexts: dict[str, Nft] = {}  # kernel thread only

    async def close(self) -> None:
        await self._kernel.run(self._close_all)

    def failed(self) -> None:
        self._applied.clear()  # unknown state: rewrite every table next time

    def containers_changed(self) -> None:
        self.mark()

    def _bodies(self) -> Callable[[Container], str]:
        """One pass's tables: computed once per distinct set of networks, not per container
        (every container on the same networks balances the same VIPs)."""
        running = {t.task_id for t in self._view.tasks() if t.serving}
        endpoints = [e for e in self._view.endpoints() if e.service]
        cache: dict[frozenset[str], str] = {}

        def body(container: Container) -> str:
            nets = frozenset(ep.net_id for ep in container.state.endpoints)
            if nets not in cache:
                cache[nets] = render(plan_vips(nets, endpoints, running))
            return cache[nets]

        return body

    async def prepare(self, container: Container, netns: Path) -> None:
        """Install a starting container's table before its command runs."""
        await self._apply(container.config.container_id, netns, self._bodies()(container))

    async def _apply(self, cid: str, netns: Path, body: str) -> None:
        if self._applied.get(cid) == body:
            return
        await self._kernel.run(self._apply_in_kernel, cid, netns, body)
        self._applied[cid] = body

    def _apply_in_kernel(self, cid: str, netns: Path, body: str) -> None:
        nft = self._contexts.get(cid)
        if nft is None:
            nft = self._contexts[cid] = Nft(netns)
        nft.run(replace_table("ip", TABLE, body))
        if not body:
            # Kept only where VIPs are balanced: a context caches every table of its namespace
            # (its DNS redirect too), about 0.5 MiB each, and most containers have no VIP.
            self._close(cid)

    def _close(self, cid: str) -> None:
        nft = self._contexts.pop(cid, None)
        if nft is not None:
            nft.close()

    def _close_all(self, keep: frozenset[str] = frozenset()) -> None:
        for cid in [c for c in self._contexts if c not in keep]:
            self._close(cid)

    async def reconcile(self) -> None:
        running = {
            c.config.container_id: c for c in self._containers() if c.running and c.state.netns
        }
        for cid in [c for c in self._applied if c not in running]:
            del self._applied[cid]
        # by the contexts themselves, not by _applied: a failed pass clears _applied, and an
        # open context keeps a stopped container's namespace alive
        await self._kernel.run(self._close_all, frozenset(running))
        body = self._bodies()
        for cid, container in running.items():
            if container.state.endpoints:
                await self._apply(cid, nsfs.netns_path(container.state.netns), body(container))
