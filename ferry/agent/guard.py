"""This host's guard tables (``network.guard``), kept level-triggered.

Each pass reads the cluster's nodes from the mirror and the host's facts from the kernel (the
subnets of the advertise address's interface, the macvlan parents and their MACs), renders
both tables and replaces them in one transaction when their text changed.

Order matters in three places:
- A restarted ferryd must not cut its overlays while its mirror catches up: until the mirror
  is synced, the node set is the one the kernel already holds (read back once), or the last one
  this process applied. Only a host that is in no swarm accepts no VXLAN at all.
- A new macvlan network gets its egress hook before ``network create`` returns (``sync``), so
  no container on it ever runs unguarded. Bridges need nothing: they are born in the guarded
  interface group.
- Leaving the swarm (``forget_swarm``) drops every node at once, before the agent goes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable

from ferry.daemon.logs import kv
from ferry.kernel.netlink import Netlink
from ferry.kernel.nft import KeptTables
from ferry.kernel.thread import KernelThread
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.network.guard import FAMILIES, TABLE, GuardSpec, render
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.agent.guard")


def node_addresses(view: ClusterView) -> frozenset[str]:
    """Advertise addresses of the nodes that have not left (down ones may come back)."""
    out = set()
    for node in view.nodes():
        if node.left or not node.addr:
            continue
        try:
            out.add(str(ipaddress.IPv4Address(node.addr)))
        except ValueError:
            log.warning("node address is not IPv4: not trusted", extra=kv(node=node.hostname))
    return frozenset(out)


Parents = tuple[tuple[str, str], ...]  # (device, MAC)


def host_facts(advertise: str, parents: set[str]) -> tuple[frozenset[str], Parents]:
    """(subnets of the interface holding ``advertise``, (parent, MAC) of each macvlan parent
    that exists). Runs on the kernel thread."""
    with Netlink() as nl:
        networks = nl.address_cidrs()
        macs = {link.name: link.mac for link in nl.links()}
    devices = {dev for dev, cidr in networks if advertise and cidr.split("/")[0] == advertise}
    underlay = frozenset(
        str(ipaddress.ip_interface(cidr).network) for dev, cidr in networks if dev in devices
    )
    found = tuple(sorted((p, macs[p]) for p in parents if macs.get(p)))
    return underlay, found


class HostGuard(Reconciler):
    name = "host guard reconcile"

    def __init__(
        self,
        kernel: KernelThread,
        *,
        advertise_addr: Callable[[], str],
        macvlan_parents: Callable[[], set[str]],
        data_path_port: Callable[[], int],
    ) -> None:
        super().__init__()
        self._kernel = kernel
        self._advertise = advertise_addr  # "" when not in a swarm
        self._data_path_port = data_path_port  # the swarm's; this host's default outside one
        self._parents = macvlan_parents
        self._tables = KeptTables(tuple((family, TABLE) for family in FAMILIES))
        self._view: ClusterView | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._nodes: frozenset[str] | None = None  # None: not known yet in this process
        self._lock = asyncio.Lock()

    # inputs ----------------------------------------------------------------------------------
    def follow(self, view: ClusterView) -> None:
        """The agent started: node changes in its mirror matter from now on."""
        self.unfollow()
        self._view = view
        self._unsubscribe = view.mirror.subscribe(self._mirror_changed)
        self.mark()

    def unfollow(self) -> None:
        """The agent stops: keep the nodes last seen (a restart must not cut overlays)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._view = None

    def forget_swarm(self) -> None:
        """This node leaves the swarm: from now on no VXLAN is accepted."""
        self.unfollow()
        self._nodes = frozenset()
        self.mark()

    def _mirror_changed(self, changed: frozenset[str]) -> None:
        if not changed or any(k.startswith(keys.NODES) for k in changed):
            self.mark()

    async def sync(self) -> None:
        """Run a pass now and return once it is applied (a macvlan network was created);
        raises what the pass raised, and the loop retries it."""
        try:
            await self.reconcile()
        except BaseException:
            self.failed()
            self.mark()
            raise

    # passes ----------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        async with self._lock:
            nodes = await self._known_nodes()
            underlay, parents = await self._kernel.run(
                host_facts, self._advertise(), self._parents()
            )
            spec = GuardSpec(nodes, underlay, parents, data_path_port=self._data_path_port())
            bodies = render(spec)
            if self._tables.stale(bodies):
                await self._kernel.run(self._tables.apply, bodies)
                log.info("host guard applied", extra=kv(nodes=len(nodes), macvlan=len(parents)))

    async def _known_nodes(self) -> frozenset[str]:
        view = self._view
        if view is not None and view.mirror.synced:
            self._nodes = node_addresses(view)
        elif self._nodes is None:
            held = None
            if self._advertise():  # a member whose mirror is not there yet: keep the kernel's
                held = await self._kernel.run(self._tables.set_addresses, "inet", TABLE, "nodes")
            self._nodes = held or frozenset()
        return self._nodes

    def failed(self) -> None:
        self._tables.forget()

    async def close(self) -> None:
        await self._kernel.run(self._tables.close)
