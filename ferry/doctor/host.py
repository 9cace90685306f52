"""One host examined: its containers, sandboxes, tables and names against what must exist.

Design notes. What must exist comes from the same sources and planners the reconcilers use:
the containers' recorded endpoints, the store's endpoints as the network agent reads them
(``ClusterView.live_endpoints``: a Down node's are not served), ``network.peers`` for FDB and
neighbour entries, ``network.lb`` for VIP tables, the published-ports plan of ``HostPorts`` and
the ingress plan of ``IngressAgent``, the egress bridge's masquerade for the host's egress
subnet. What exists is read from the kernel
(``kernel.inspect``), and names are asked for for real: a DNS question from inside each
container's namespace to 127.0.0.11. Nothing is changed.

Cost: a few netlink dumps per container and sandbox, one ``nft`` process per table and one DNS
question per name a container should resolve (at most NAMES_MAX); meant for on-demand use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ferry.agent.containers import ContainerService
from ferry.agent.hostports import HostPorts
from ferry.agent.ingress import IngressAgent
from ferry.agent.names import NameTable
from ferry.agent.networks import NetworkAgent
from ferry.doctor import nftrules
from ferry.doctor.findings import MISSING, Finding, diff_maps, diff_sets
from ferry.doctor.names import check_names
from ferry.errors import KernelError
from ferry.kernel import inspect, nsfs
from ferry.kernel.thread import KernelThread
from ferry.model.container import Container
from ferry.model.network import GWBRIDGE, Endpoint
from ferry.model.service import TaskState
from ferry.network.drivers.gwbridge import EGRESS_TABLE, GatewayBridge
from ferry.network.drivers.overlay import BRIDGE, VXLAN, veth_name
from ferry.network.lb import TABLE as VIP_TABLE
from ferry.network.lb import plan_vips
from ferry.network.peers import desired_peers
from ferry.network.ports import HOST_TABLE, INGRESS_TABLE


@dataclass
class HostParts:
    """What the doctor reads on a host: the daemon's own components (the swarm ones only
    while the host is in a swarm)."""

    hostname: str
    netns_prefix: str
    kernel: KernelThread
    containers: ContainerService
    host_ports: HostPorts
    name_table: Callable[[], NameTable]  # the names as the store has them now
    networks: NetworkAgent | None = None
    ingress: IngressAgent | None = None
    gateway: GatewayBridge | None = None


class HostDoctor:
    def __init__(self, parts: HostParts) -> None:
        self.p = parts

    def _finding(self, check: str, subject: str, item: str, want: str, have: str) -> Finding:
        return Finding(self.p.hostname, check, subject, item, want, have)

    async def examine(self) -> list[Finding]:
        findings: list[Finding] = []
        running = [c for c in self.p.containers.all() if c.running]
        for container in running:
            findings += await self._interfaces(container)
        findings += await self._published_ports()
        findings += await self._egress()
        findings += self._orphan_namespaces()
        agent = self.p.networks
        if agent is not None:
            findings += self._tasks()
            findings += await self._sandboxes(agent)
            findings += await self._vips(agent, running)
            findings += await self._ingress()
        findings += await check_names(self.p, running)
        return sorted(findings)

    # containers ------------------------------------------------------------------------------
    async def _interfaces(self, container: Container) -> list[Finding]:
        name = container.config.name
        path = nsfs.netns_path(container.state.netns) if container.state.netns else None
        if path is None or not path.exists():
            if not self.p.containers.is_running(container.config.container_id):
                return []  # it ended while we looked
            return [self._finding("container", name, "namespace", "present", MISSING)]
        try:
            links = await self.p.kernel.run(inspect.interfaces, path)
        except KernelError as exc:
            if not self.p.containers.is_running(container.config.container_id):
                return []  # it ended while we looked: nothing to say about it
            return [self._finding("container", name, "namespace", "readable", str(exc))]
        have = {link.name: link for link in links if link.name != "lo"}
        out = []
        for ep in container.state.endpoints:
            mtu = self._mtu(ep.net_id, ep.driver)
            want = _describe(f"{ep.ip}/{ep.prefixlen}", ep.mac, mtu)
            link = have.pop(ep.ifname, None)
            actual = MISSING
            if link is not None:
                addrs = " ".join(link.addrs) or "no address"
                actual = _describe(addrs, link.mac, link.mtu if mtu is not None else None)
            if actual != want:
                out.append(self._finding("interface", name, ep.ifname, want, actual))
            out += self._endpoint_record(name, ep.net_id, ep.ep_id, ep.ip, ep.mac)
        for ifname in sorted(have):
            out.append(self._finding("interface", name, ifname, "(none wanted)", "present"))
        return out

    def _mtu(self, net_id: str, driver: str) -> int | None:
        """The MTU an overlay endpoint must have; None where it is not checked (bridges and
        macvlan follow their parent's)."""
        agent = self.p.networks
        if agent is not None and driver == "overlay":
            network = agent.view.network(net_id)
            if network is not None:
                return agent.overlay.mtu(network)
        return None

    def _endpoint_record(
        self, name: str, net_id: str, ep_id: str, ip: str, mac: str
    ) -> list[Finding]:
        """A swarm endpoint a container holds must be the store's, on this node."""
        agent = self.p.networks
        if agent is None or net_id == GWBRIDGE or agent.view.network(net_id) is None:
            return []
        record = next((e for e in agent.view.endpoints(net_id) if e.ep_id == ep_id), None)
        want = f"{ip} {mac} on {agent.node_id[:12]}"
        have = MISSING if record is None else f"{record.ip} {record.mac} on {record.node_id[:12]}"
        if want == have:
            return []
        return [self._finding("endpoint", name, ep_id[:12], want, have)]

    def _tasks(self) -> list[Finding]:
        agent = self.p.networks
        assert agent is not None
        local = {c.config.task_id: c for c in self.p.containers.all() if c.config.task_id}
        out = []
        mine = {t.task_id: t for t in agent.view.tasks() if t.node_id == agent.node_id}
        for task in mine.values():
            container = local.get(task.task_id)
            running = container is not None and container.running
            if (
                task.desired == TaskState.RUNNING
                and task.state == TaskState.RUNNING
                and not running
            ):
                have = MISSING if container is None else container.state.status.value
                out.append(self._finding("task", task.name, "container", "running", have))
            if task.desired != TaskState.RUNNING and task.state.terminal and running:
                out.append(self._finding("task", task.name, "container", "stopped", "running"))
        for task_id, container in sorted(local.items()):
            if task_id not in mine and container.running:
                out.append(
                    self._finding(
                        "container", container.config.name, "task", "in the store", MISSING
                    )
                )
        return out

    def _orphan_namespaces(self) -> list[Finding]:
        prefix = self.p.netns_prefix
        owned = {c.state.netns for c in self.p.containers.all() if c.running and c.state.netns}
        out = []
        for name in nsfs.list_netns(f"{prefix}c-"):
            if name not in owned:
                out.append(
                    self._finding("orphan", name, "namespace", "(owned by nothing)", "present")
                )
        return out

    # overlay sandboxes -----------------------------------------------------------------------
    async def _sandboxes(self, agent: NetworkAgent) -> list[Finding]:
        view = agent.view
        endpoints = view.live_endpoints(own=agent.node_id)
        vteps = {n.node_id: n.addr for n in view.nodes()}
        local_nets = {e.net_id[:12]: e.net_id for e in endpoints if e.node_id == agent.node_id}
        known = {n.net_id[:12] for n in view.networks()}
        out = []
        for short in sorted(set(agent.overlay.existing_sandboxes()) | set(local_nets)):
            subject = f"sandbox {short}"
            path = agent.overlay.sandbox_path(short)
            if short not in known:
                out.append(
                    self._finding("orphan", subject, "network", "(owned by nothing)", "present")
                )
                continue
            if short not in local_nets:
                out.append(self._finding("orphan", subject, "local endpoints", "some", "none"))
                continue
            if not path.exists():
                out.append(self._finding("sandbox", subject, "namespace", "present", MISSING))
                continue
            net_id = local_nets[short]
            peers = desired_peers(
                (e for e in endpoints if e.net_id == net_id), agent.node_id, vteps
            )
            try:
                fdb, neigh, links = await self.p.kernel.run(_sandbox_state, path)
            except KernelError as exc:
                out.append(self._finding("sandbox", subject, "state", "readable", str(exc)))
                continue
            out += diff_maps(self.p.hostname, "fdb", subject, {p.mac: p.vtep for p in peers}, fdb)
            out += diff_maps(
                self.p.hostname, "neighbour", subject, {p.ip: p.mac for p in peers}, neigh
            )
            out += self._veths(subject, net_id, endpoints, links)
        return out

    def _veths(
        self, subject: str, net_id: str, endpoints: list[Endpoint], links: set[str]
    ) -> list[Finding]:
        """Each running container's endpoint plugged in; nothing plugged that no endpoint of
        this node owns (a task not started yet has an endpoint and no veth: fine)."""
        agent = self.p.networks
        assert agent is not None
        owned = {
            veth_name(e.ep_id)
            for e in endpoints
            if e.net_id == net_id and e.node_id == agent.node_id
        }
        started = {
            veth_name(ep.ep_id)
            for c in self.p.containers.all()
            if c.running
            for ep in c.state.endpoints
            if ep.net_id == net_id
        }
        if self.p.ingress is not None and self.p.ingress.ready:
            started |= {veth_name(e.ep_id) for e in endpoints if e.net_id == net_id
                        and e.owner_id == f"ingress-{agent.node_id}"}  # fmt: skip
        out = [
            self._finding("veth", subject, v, "plugged in", MISSING)
            for v in sorted(started - links)
        ]
        out += [
            self._finding("veth", subject, v, "(owned by nothing)", "plugged in")
            for v in sorted(links - owned)
        ]
        return out

    async def _vips(self, agent: NetworkAgent, running: list[Container]) -> list[Finding]:
        view = agent.view
        serving = {t.task_id for t in view.tasks() if t.serving}
        endpoints = [e for e in view.live_endpoints(own=agent.node_id) if e.service]
        out = []
        for container in running:
            if not container.state.endpoints or not container.state.netns:
                continue
            nets = frozenset(ep.net_id for ep in container.state.endpoints)
            want = nftrules.vip_rules(plan_vips(nets, endpoints, serving))
            path = nsfs.netns_path(container.state.netns)
            try:
                rules = await asyncio.to_thread(inspect.nft_rules, path, "ip", VIP_TABLE)
            except KernelError:
                if self.p.containers.is_running(container.config.container_id):
                    raise
                continue  # it ended while we looked
            have = nftrules.kernel_rules(rules or [])
            out += diff_sets(self.p.hostname, "vip", container.config.name, want, have)
        return out

    # published ports -------------------------------------------------------------------------
    async def _published_ports(self) -> list[Finding]:
        want = nftrules.host_rules(self.p.host_ports.plan())
        rules = await asyncio.to_thread(inspect.nft_rules, None, "ip", HOST_TABLE)
        have = nftrules.kernel_rules(rules or [])
        return diff_sets(self.p.hostname, "port", HOST_TABLE, want, have)

    async def _egress(self) -> list[Finding]:
        gateway = self.p.gateway
        if gateway is None:
            return []
        rules = await asyncio.to_thread(inspect.nft_rules, None, "ip", EGRESS_TABLE)
        if rules is None and not gateway.ready:
            return []  # no egress bridge yet: it is made when a container first needs it
        want = nftrules.egress_rules(gateway.egress)
        have = nftrules.kernel_rules(rules or [])
        return diff_sets(self.p.hostname, "egress", EGRESS_TABLE, want, have)

    async def _ingress(self) -> list[Finding]:
        ingress = self.p.ingress
        if ingress is None:
            return []
        network = ingress.network()
        path = nsfs.netns_path(ingress.netns)
        if network is None:
            if path.exists():
                return [
                    self._finding(
                        "orphan", ingress.netns, "namespace", "(owned by nothing)", "present"
                    )
                ]
            return []
        if not path.exists():
            return [self._finding("ingress", ingress.netns, "namespace", "present", MISSING)]
        want = nftrules.ingress_rules(ingress.plan(network))
        rules = await asyncio.to_thread(inspect.nft_rules, path, "ip", INGRESS_TABLE)
        have = nftrules.kernel_rules(rules or [], skip=("postrouting", "forward"))
        return diff_sets(self.p.hostname, "ingress", INGRESS_TABLE, want, have)


def _describe(addrs: str, mac: str, mtu: int | None) -> str:
    return f"{addrs} {mac}" + (f" mtu {mtu}" if mtu is not None else "")


def _sandbox_state(path: Path) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """FDB and neighbour entries of the sandbox's VXLAN device, and the veths on its bridge."""
    links = inspect.interfaces(path)
    ports = {link.name for link in links if link.master == BRIDGE and link.name != VXLAN}
    fdb, neigh = inspect.vxlan_peers(path, VXLAN)
    return fdb, neigh, ports
