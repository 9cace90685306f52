"""This host's part of the routing mesh: the ingress sandbox and its balancing table.

Design notes. Every node of a swarm with an ingress network has an ingress sandbox
(``<prefix>ingress``): a namespace with one leg on the ingress overlay (``eth0``, an address
the managers reserve for it) and one on the egress bridge (``eth1``, the egress subnet's second
address, 172.18.0.2 by default; its default route), and forwarding on. The host sends every
ingress-published port to it (see ``ports.render_host``); it balances each port over the
running tasks' ingress addresses on any node (``ports.render_ingress``). The sandbox and its
endpoint are found again after a restart (the endpoint is in the store, the namespace on the
host), so nothing is rebuilt that works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ferry.agent.networks import NetworkAgent
from ferry.daemon.logs import kv
from ferry.kernel import nsfs
from ferry.kernel.netlink import Netlink
from ferry.kernel.nft import KeptTable
from ferry.kernel.sandboxes import make_sandbox, remove_sandbox
from ferry.kernel.sysctl import write_sysctls
from ferry.kernel.thread import KernelThread
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.container import NetworkChoice
from ferry.model.network import EndpointKind, Network
from ferry.model.service import PublishMode
from ferry.network.drivers.gwbridge import GatewayBridge
from ferry.network.ports import (
    GATEWAY_IF,
    INGRESS_IF,
    INGRESS_TABLE,
    IngressPort,
    render_ingress,
)
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.agent.ingress")

GW_IF = GATEWAY_IF


def _links(netns: str) -> set[str]:
    path = nsfs.netns_path(netns)
    if not path.exists():
        return set()
    with Netlink(path) as nl:
        return {link.name for link in nl.links()}


def _make_sandbox(netns: str) -> None:
    path = make_sandbox(netns, reuse=True)
    # it routes between its two legs; replies come back by the same path (loose rp filter)
    write_sysctls(path, {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2"})


class IngressAgent(Reconciler):
    name = "ingress reconcile"
    watched = (keys.NETWORKS, keys.SERVICES, keys.TASKS, keys.ENDPOINTS)

    def __init__(
        self,
        kernel: KernelThread,
        *,
        node_id: str,
        view: ClusterView,
        networks: NetworkAgent,
        gateway: GatewayBridge,
        netns_prefix: str,
        on_ready: Callable[[], None],
    ) -> None:
        super().__init__(view.mirror)
        self._kernel = kernel
        self._node_id = node_id
        self._view = view
        self._networks = networks
        self._gateway = gateway
        self.netns = f"{netns_prefix}ingress"
        self._on_ready = on_ready
        self.ready = False  # the sandbox is up and balancing
        self.settled = False  # a pass has completed: ``ready`` says what the swarm wants
        self._announced = False
        self._table = KeptTable("ip", INGRESS_TABLE, nsfs.netns_path(self.netns))
        self._sandbox_built = False  # both legs attached; checked again after any failure

    async def close(self) -> None:
        await self._kernel.run(self._table.close)

    def failed(self) -> None:
        self._table.forget()
        self._sandbox_built = False

    def network(self) -> Network | None:
        """The swarm's ingress network, if it has one."""
        return next((n for n in self._view.networks() if n.ingress), None)

    async def reconcile(self) -> None:
        ingress = self.network()
        if ingress is None:
            await self.teardown()
        else:
            await self._ensure_sandbox(ingress)
            body = render_ingress(self.plan(ingress))
            if self._table.stale(body):
                await self._kernel.run(self._table.apply, body)
            self.ready = True
        if not self.settled or self.ready != self._announced:
            self.settled = True
            self._announced = self.ready
            self._on_ready()

    async def _ensure_sandbox(self, ingress: Network) -> None:
        path = nsfs.netns_path(self.netns)
        if self._sandbox_built and path.exists():
            return  # every task change runs a pass: no kernel round trips for what is there
        await self._kernel.run(_make_sandbox, self.netns)
        links = await self._kernel.run(_links, self.netns)
        if INGRESS_IF not in links:
            mine = [
                e
                for e in self._view.endpoints(ingress.net_id)
                if e.kind == EndpointKind.SANDBOX and e.node_id == self._node_id
            ]
            choice = NetworkChoice(ingress.net_id, ep_id=mine[0].ep_id if mine else "")
            # the managers name a node's sandbox endpoint (manager/admission.py): ask bare
            await self._networks.attach(
                choice, path, INGRESS_IF, owner_id="", name="", hostname="",
                kind=EndpointKind.SANDBOX,
            )  # fmt: skip
            log.info("ingress sandbox attached to the routing mesh", extra=kv(netns=self.netns))
        if GW_IF not in links:
            sandbox_ip = self._gateway.egress.sandbox_ip
            await self._gateway.attach(path, GW_IF, ip=sandbox_ip, isolated=False)
        self._sandbox_built = True

    def plan(self, ingress: Network) -> list[IngressPort]:
        running = {t.task_id for t in self._view.tasks() if t.serving}
        ingress_ips: dict[str, list[str]] = {}
        for ep in self._view.endpoints(ingress.net_id):
            if ep.kind == EndpointKind.TASK and ep.owner_id in running:
                ingress_ips.setdefault(ep.service, []).append(ep.ip)
        ports = []
        for svc in self._view.services():
            backends = tuple(sorted(ingress_ips.get(svc.spec.name, [])))
            for port in svc.spec.ports:
                if port.mode == PublishMode.INGRESS:
                    ports.append(IngressPort(port.protocol, port.published, port.target, backends))
        return ports

    async def teardown(self) -> None:
        """No routing mesh any more (no ingress network, or the node leaves the swarm)."""
        self.ready = False
        self._sandbox_built = False
        await self._kernel.run(self._table.close)
        await self._kernel.run(remove_sandbox, self.netns)
