"""This host's side of swarm networks: endpoints for local containers, sandboxes, peers.

Design notes. Attaching a container asks a manager for an endpoint (address and MAC, recorded
in the store at once, so other hosts start programming their peers while this host is still
wiring the veth), then has the driver build the sandbox (if needed) and the container's
interface. The reconciler is level-triggered: on any change of the mirrored state it recomputes,
for every network with a local endpoint, the full set of remote peers and hands it to the
driver, which applies only the difference; sandboxes no local endpoint needs are removed.

One owner per sandbox: this agent alone makes and removes overlay sandboxes, and both happen
under the network's lock. An attach holds the network from before it takes the lock until its
veth is on the bridge; a removal, under the lock, looks afresh (not at the pass's older view)
and removes only a sandbox that no attach holds, no local endpoint in the mirror names, and
whose bridge has no endpoint plugged in (the kernel's own word). So a pass that started before
an attach can never take the sandbox from under it.

It never acts before the first snapshot of the session arrived: an empty mirror would read as
"nothing is wanted" and tear down a restarted host's working data plane.

Order matters for the first packet: DNS answers from ``programmed`` — the endpoints as of the
last pass that completed — and ``on_reconciled`` tells it after each pass. So a remote name is
answered only once its neighbour entry exists here; otherwise the asker's first ARP would go
unanswered and Linux would retry it only a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ferry.agent.encryption import EncryptionAgent
from ferry.agent.link import ManagerLink
from ferry.daemon.logs import kv
from ferry.errors import FerryError, InvalidArgument, NotFound, Unavailable
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import decode_plain
from ferry.model.container import AttachedEndpoint, NetworkChoice
from ferry.model.ids import lookup
from ferry.model.network import Endpoint, EndpointKind, Network, network_names
from ferry.model.node import LEADER_GRACE_S
from ferry.model.rules import check_no_service_name
from ferry.network.drivers.overlay import OverlayDriver
from ferry.network.peers import desired_peers
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.agent.networks")

RETRY_S = 1.0
KEPT_RECHECK_S = 2.0  # a sandbox kept for a plugged veth is looked at again after this


class NetworkAgent(Reconciler):
    name = "network reconcile"
    retry_s = RETRY_S
    # sessions and the leader: a node's liveness decides whether its endpoints are served
    watched = (keys.ENDPOINTS, keys.NETWORKS, keys.NODES, keys.SESSIONS, keys.LEADER)

    def __init__(
        self,
        node_id: str,
        link: ManagerLink,
        view: ClusterView,
        overlay: OverlayDriver,
        local_owners: Callable[[], set[str]],
        *,
        encryption: EncryptionAgent | None = None,
        on_reconciled: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(view.mirror)
        self.on_reconciled = on_reconciled
        self.node_id = node_id
        self._link = link
        self._view = view
        self.overlay = overlay
        self.encryption = encryption
        self._local_owners = local_owners
        self._pending_release: set[tuple[str, str]] = set()
        self.programmed: list[Endpoint] = []  # the endpoints the last completed pass programmed
        # by the sandbox's short id (all a sandbox's name carries): its lock, and the attaches
        # in flight that need it
        self._locks: dict[str, asyncio.Lock] = {}
        self._holds: Counter[str] = Counter()
        self._grace_timer: asyncio.TimerHandle | None = None
        # sandboxes kept only because a veth was still plugged in: looked at again shortly,
        # since the veth's going (a container's removal) need not change anything watched
        self._kept: set[str] = set()
        self._kept_timer: asyncio.TimerHandle | None = None

    @property
    def view(self) -> ClusterView:
        return self._view

    def passed(self) -> None:
        self.on_reconciled()

    # lookups ---------------------------------------------------------------------------------
    def resolve(self, ref: str) -> Network:
        net = lookup(self._view.networks(), ref, network_names, "network")
        if net is None:
            raise NotFound(f"network {ref} not found")
        return net

    def check_names(self, network: Network, names: tuple[str, ...]) -> None:
        """Refuse DNS names on ``network`` (local or swarm) that are a service's (Forbidden,
        ``rules.check_no_service_name``); for a swarm network the managers check again when
        they hand out the endpoint."""
        check_no_service_name(names, network.name, self._view.services())

    async def _ensure_network(self, network: Network) -> None:
        """The network's sandbox; an encrypted one only once its frames cannot leave in clear.
        Call it under the network's lock."""
        if not network.encrypted:
            await self.overlay.ensure_network(network)
            return
        if self.encryption is None:
            raise Unavailable(f"network {network.name} is encrypted: this host cannot encrypt")
        async with self.encryption.holding():
            await self.overlay.ensure_network(network)

    def _lock(self, short: str) -> asyncio.Lock:
        return self._locks.setdefault(short, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def _holding(self, network: Network) -> AsyncIterator[None]:
        """The network's sandbox exists, and stays for as long as the block runs."""
        short = network.net_id[:12]
        self._holds[short] += 1
        try:
            async with self._lock(short):
                await self._ensure_network(network)
            yield
        finally:
            self._holds[short] -= 1
            if not self._holds[short]:
                del self._holds[short]

    async def _wire(self, network: Network, endpoint: Endpoint, netns: Path, ifname: str) -> None:
        async with self._holding(network):
            await self.overlay.ensure_endpoint(network, endpoint, netns, ifname)

    async def _remove_if_unused(self, short: str) -> None:
        async with self._lock(short):
            if self._holds[short]:
                return
            if any(
                e.node_id == self.node_id and e.net_id.startswith(short)
                for e in self._view.endpoints()
            ):
                return
            plugged = await self.overlay.plugged(short)
            if plugged:
                if short not in self._kept:
                    log.warning(
                        "sandbox kept: endpoints are plugged in that the store does not know",
                        extra=kv(net=short, ports=",".join(sorted(plugged))),
                    )
                self._kept.add(short)
                self._look_again(KEPT_RECHECK_S)
                return
            self._kept.discard(short)
            log.info("removing unused sandbox", extra=kv(net=short))
            await self.overlay.remove_network(short)  # sandboxes are named by short id

    async def remove_all(self) -> None:
        """Every overlay sandbox of this host goes (the node leaves the swarm)."""
        for short in self.overlay.existing_sandboxes():
            async with self._lock(short):
                await self.overlay.remove_network(short)

    # attach / detach -------------------------------------------------------------------------
    async def attach(
        self,
        choice: NetworkChoice,
        netns: Path,
        ifname: str,
        *,
        owner_id: str,
        name: str,
        hostname: str,
        kind: EndpointKind = EndpointKind.CONTAINER,
    ) -> AttachedEndpoint:
        network = self.resolve(choice.network)
        if choice.ep_id:  # reserved by the manager with the task: wire it, never release it
            endpoint = self._reserved(network, choice.ep_id)
            await self._wire(network, endpoint, netns, ifname)
            return self._attached(network, endpoint, ifname, choice, reserved=True)
        if network.ingress and kind == EndpointKind.CONTAINER:
            raise InvalidArgument("the ingress network is for the routing mesh only")
        raw = await self._link.call(
            "POST",
            "/v1/attachments",
            {
                "net": network.net_id,
                "owner_id": owner_id,
                "name": name,
                "kind": kind.value,
                "aliases": list(choice.aliases),
                "hostname": hostname,
                "ip": choice.ip,
            },
        )
        endpoint = decode_plain(Endpoint, raw)
        try:
            await self._wire(network, endpoint, netns, ifname)
        except BaseException:
            await self.release(network.net_id, endpoint.ep_id)
            raise
        return self._attached(network, endpoint, ifname, choice, reserved=False)

    def _reserved(self, network: Network, ep_id: str) -> Endpoint:
        for endpoint in self._view.endpoints(network.net_id):
            if endpoint.ep_id == ep_id:
                return endpoint
        raise NotFound(f"endpoint {ep_id[:12]} on {network.name} is not known (yet)")

    def _attached(
        self,
        network: Network,
        endpoint: Endpoint,
        ifname: str,
        choice: NetworkChoice,
        *,
        reserved: bool,
    ) -> AttachedEndpoint:
        return AttachedEndpoint(
            net_id=network.net_id,
            net_name=network.name,
            driver=network.driver.value,
            ep_id=endpoint.ep_id,
            ip=endpoint.ip,
            prefixlen=network.prefixlen,
            gateway=network.gateway,
            mac=endpoint.mac,
            ifname=ifname,
            aliases=tuple(choice.aliases),
            reserved=reserved,
        )

    async def detach(self, attached: AttachedEndpoint) -> None:
        await self.overlay.remove_endpoint(attached.net_id, attached.ep_id)
        if not attached.reserved:
            await self.release(attached.net_id, attached.ep_id)

    async def release(self, net_id: str, ep_id: str) -> None:
        """Give an endpoint back; if no manager answers, keep it and retry later."""
        try:
            await self._link.call("DELETE", f"/v1/attachments/{net_id}/{ep_id}")
            self._pending_release.discard((net_id, ep_id))
        except NotFound:
            self._pending_release.discard((net_id, ep_id))
        except FerryError as exc:
            log.warning("endpoint release deferred", extra=kv(ep=ep_id[:12], error=exc))
            self._pending_release.add((net_id, ep_id))
            self.mark()

    # reconcile -------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        for net_id, ep_id in list(self._pending_release):
            await self.release(net_id, ep_id)
        await self._collect_orphans()
        networks = {n.net_id: n for n in self._view.networks()}
        vteps = {n.node_id: n.addr for n in self._view.nodes()}
        endpoints = self._view.live_endpoints(own=self.node_id)
        self._recheck_after_grace()
        local_nets = {e.net_id for e in endpoints if e.node_id == self.node_id}
        for net_id in sorted(local_nets):
            network = networks.get(net_id)
            if network is None:
                continue
            peers = desired_peers((e for e in endpoints if e.net_id == net_id), self.node_id, vteps)
            async with self._lock(net_id[:12]):
                await self._ensure_network(network)
                plan = await self.overlay.set_peers(net_id, peers)
            if not plan.empty:
                log.debug("peers programmed", extra=kv(network=network.name, changes=len(plan)))
        self.programmed = endpoints
        for short in self.overlay.existing_sandboxes():
            if not any(net_id.startswith(short) for net_id in local_nets):
                await self._remove_if_unused(short)

    def _recheck_after_grace(self) -> None:
        """A node that is Unknown becomes Down when the leader's grace ends, with no change in
        the store to say so: look again then."""
        since = self._view.leader_since()
        if since is None or self._grace_timer is not None:
            return
        left_s = since + LEADER_GRACE_S - self._view.clock()
        if left_s <= 0:
            return

        def again() -> None:
            self._grace_timer = None
            self.mark()

        self._grace_timer = asyncio.get_running_loop().call_later(left_s + 0.05, again)

    def _look_again(self, after_s: float) -> None:
        if self._kept_timer is not None:
            return

        def again() -> None:
            self._kept_timer = None
            self.mark()

        self._kept_timer = asyncio.get_running_loop().call_later(after_s, again)

    async def close(self) -> None:
        for timer in (self._grace_timer, self._kept_timer):
            if timer is not None:
                timer.cancel()
        self._grace_timer = self._kept_timer = None

    async def _collect_orphans(self) -> None:
        """Endpoints of this node whose container is gone (ferryd died mid-way): release them.
        A container is registered locally before it asks for endpoints, so a starting one is
        never mistaken for an orphan."""
        owners = self._local_owners()
        for endpoint in self._view.endpoints():
            if (
                endpoint.node_id == self.node_id
                and endpoint.kind == EndpointKind.CONTAINER
                and endpoint.owner_id not in owners
            ):
                log.info("releasing an orphaned endpoint", extra=kv(ep=endpoint.ep_id[:12]))
                await self.release(endpoint.net_id, endpoint.ep_id)
