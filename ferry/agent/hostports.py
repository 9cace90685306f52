"""The host's published ports: one nftables table, recomputed from everything that publishes.

Ingress-mode ports of every service go to the ingress sandbox (once it is up); host-mode ports
of this node's tasks and ``run -p`` ports of its containers go to the container's address on
its local bridge network, or else on the egress bridge. Level-triggered: after any change of
services or local containers the whole table is rendered again and replaced in one transaction
if its text changed (established connections keep their translation in conntrack).

A restart of ferryd never empties the table: until this host knows the swarm's state again
(the session's first snapshot, the ingress sandbox checked), the routing mesh's ports are the
ones last known, kept in a small file; the table is replaced only by a complete one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ferry.daemon.files import write_atomic
from ferry.daemon.logs import kv
from ferry.kernel.nft import KeptTable
from ferry.kernel.thread import KernelThread
from ferry.manager.store.view import ClusterView
from ferry.model.container import Container
from ferry.model.network import GWBRIDGE, EgressSubnet
from ferry.model.service import PublishMode
from ferry.network.ports import (
    HOST_TABLE,
    HostForward,
    ingress_forwards,
    render_host,
    split_reserved,
)
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.agent.hostports")


def ingress_ports(view: ClusterView | None) -> set[tuple[str, int]]:
    if view is None:
        return set()
    return {
        (p.protocol, p.published)
        for s in view.services()
        for p in s.spec.ports
        if p.mode == PublishMode.INGRESS
    }


def container_forwards(containers: list[Container]) -> list[HostForward]:
    forwards = []
    for container in containers:
        if not container.running:
            continue
        gw = _port_target(container)
        if gw is None:
            continue
        for port in container.config.ports:
            forwards.append(
                HostForward(port.protocol, port.published, gw, port.target, port.host_ip)
            )
        for published, target, protocol in container.config.host_ports:
            forwards.append(HostForward(protocol, published, gw, target))
    return forwards


def _port_target(container: Container) -> str | None:
    """Where a container's published ports go: its first local bridge network's address (as
    Docker publishes from a bridge network), else its address on the egress bridge."""
    bridged = [ep for ep in container.state.endpoints if ep.driver == "bridge"]
    local = [ep for ep in bridged if ep.net_id != GWBRIDGE]
    chosen = local or bridged
    return chosen[0].ip if chosen else None


MeshPorts = set[tuple[str, int]]  # (protocol, published port) of the routing mesh


class HostPorts(Reconciler):
    name = "published ports reconcile"

    def __init__(
        self,
        kernel: KernelThread,
        containers: Callable[[], list[Container]],
        mesh: Callable[[], MeshPorts | None],
        saved_path: Path,
        data_path_port: Callable[[], int],
        *,
        egress: Callable[[], EgressSubnet],
    ) -> None:
        """``mesh`` gives the routing mesh's ports this host forwards, or None while they are
        not known (after a restart, before the swarm's state arrived); ``data_path_port`` the
        swarm's VXLAN port (this host's default outside a swarm), never forwarded; ``egress``
        the egress bridge's subnet, where the ingress sandbox has its address."""
        super().__init__()
        self._kernel = kernel
        self._containers = containers
        self._mesh = mesh
        self._saved_path = saved_path
        self._data_path_port = data_path_port
        self._egress = egress
        self._saved = _load(saved_path)
        self._table = KeptTable("ip", HOST_TABLE)
        self._refused: list[HostForward] = []  # said once in the log, until they change

    async def close(self) -> None:
        await self._kernel.run(self._table.close)

    def failed(self) -> None:
        self._table.forget()

    def changed(self) -> None:
        self.mark()

    def mesh_ports(self) -> MeshPorts:
        """The mesh's ports: as known now, else as last known (and kept for next time)."""
        live = self._mesh()
        if live is None:
            return self._saved
        if live != self._saved:
            raw = json.dumps(sorted(live)).encode()
            write_atomic(self._saved_path, raw, 0o600)
            self._saved = live
        return live

    def plan(self) -> list[HostForward]:
        mesh = self.mesh_ports()
        forwards = container_forwards(self._containers())
        if mesh:
            forwards += ingress_forwards(mesh, self._egress().sandbox_ip)
        kept, refused = split_reserved(forwards, self._data_path_port())
        if refused != self._refused:
            for f in refused:
                log.warning(
                    f"port {f.published}/{f.protocol} is reserved by Ferry: not published; "
                    "remove the container or service that asks for it",
                    extra=kv(target=f"{f.target_ip}:{f.target_port}"),
                )
            self._refused = refused
        return kept

    async def reconcile(self) -> None:
        body = render_host(self.plan())
        if self._table.stale(body):
            await self._kernel.run(self._table.apply, body)


def _load(path: Path) -> MeshPorts:
    try:
        return {(str(proto), int(port)) for proto, port in json.loads(path.read_text())}
    except (OSError, ValueError, TypeError):
        return set()  # never written (a new host) or unreadable: nothing known
