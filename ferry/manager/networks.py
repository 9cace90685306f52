"""Swarm-scoped networks and their endpoints, as a manager serves them.

Creation is serialised by an optimistic lock (``locks/networks``): read every network, choose a
subnet and VNI that collide with none, and commit only if no other creation slipped in between
(else retry). Endpoint addresses need no lock: each is a create-if-absent reservation
(``ipam/<net>/<ip>``) committed together with the endpoint record, so two managers can never
hand out one address twice.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from ferry.errors import Conflict, Forbidden, InvalidArgument, NotFound, PoolExhausted
from ferry.manager.admission import NODE_KINDS, Ask, StoreFacts, admit
from ferry.manager.feed import StoreFeed
from ferry.manager.store import Delete, Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.model.codec import decode, encode
from ferry.model.ids import lookup, new_hex_id, new_object_id
from ferry.model.network import (
    ENCRYPTED_OPTION,
    MTU_OPTIONS,
    Driver,
    Endpoint,
    EndpointKind,
    Network,
    NetworkRequest,
    Scope,
    check_network_name,
    check_options,
    network_names,
)
from ferry.model.rules import check_aliases
from ferry.model.service import TaskState
from ferry.model.times import now_iso
from ferry.network import ipam

# a network's removal waits this long for the endpoints of tasks being shut down: their stop
# grace period (Docker's default 10 s) and a margin
LEAVING_WAIT_S = 30.0
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class AttachRequest:
    """An endpoint to create, every field decided by the managers: for a node's ask by
    ``admission.admit``, for tasks and VIPs by the reconciler and the services."""

    net: str
    node_id: str
    owner_id: str
    name: str
    kind: EndpointKind = EndpointKind.CONTAINER
    aliases: tuple[str, ...] = ()
    hostname: str = ""
    ip: str = ""
    service: str = ""


def check_overlay_options(options: dict[str, str]) -> dict[str, str]:
    if options.get(ENCRYPTED_OPTION, "") not in ("", "true"):
        raise InvalidArgument(
            f"invalid value {options[ENCRYPTED_OPTION]!r} for option encrypted: give it alone "
            "(--opt encrypted)"
        )
    check_options("overlay", options, (*MTU_OPTIONS, ENCRYPTED_OPTION))
    return options


def release_ops(endpoint: Endpoint) -> list[Put | Delete]:
    """What frees an endpoint: its record and its address reservation."""
    return [
        Delete(keys.endpoint(endpoint.net_id, endpoint.ep_id)),
        Delete(keys.ipam(endpoint.net_id, endpoint.ip)),
    ]


class NetworkOps:
    def __init__(self, store: Store, view: ClusterView, feed: StoreFeed) -> None:
        self._store = store
        self._view = view
        self._feed = feed

    # lookups ---------------------------------------------------------------------------------
    def find(self, query: str) -> Network:
        net = lookup(self._view.networks(), query, network_names, "network")
        if net is None:
            raise NotFound(f"network {query} not found")
        return net

    def all(self) -> list[Network]:
        return sorted(self._view.networks(), key=lambda n: n.name)

    def endpoints(self, net_id: str) -> list[Endpoint]:
        return self._view.endpoints(net_id)

    # networks --------------------------------------------------------------------------------
    def _plan(self, req: NetworkRequest, existing: list[Network]) -> Network:
        check_network_name(req.name)
        if req.driver != Driver.OVERLAY:
            raise InvalidArgument(
                f"driver {req.driver!r} is not a swarm driver: swarm networks use -d overlay "
                "(bridge and macvlan networks are local to a host)"
            )
        if any(n.name == req.name for n in existing):
            raise Conflict(f"network with name {req.name} already exists")
        if req.ingress:
            if any(n.ingress for n in existing):
                raise Conflict("an ingress network already exists: a swarm has one routing mesh")
            if req.attachable:
                raise InvalidArgument("the ingress network cannot be attachable")
        cluster = self._view.cluster()
        if cluster is None:
            raise NotFound("cluster record is missing from the store")
        taken = [(n.name, n.subnet) for n in existing]
        nodes = [(n.hostname, n.addr) for n in self._view.nodes() if n.addr and not n.left]
        if req.subnet:
            subnet = ipam.parse_subnet(req.subnet)
            ipam.check_no_overlap(subnet, taken)
            ipam.check_off_node_addresses(subnet, nodes)
        else:
            # the pool never hands out a subnet holding a node's address (a /32 each)
            used = [c for _, c in taken] + [f"{addr}/32" for _, addr in nodes]
            subnet = ipaddress.IPv4Network(
                ipam.choose_subnet(cluster.default_pool, cluster.subnet_size, used)
            )
        gateway, ip_range = ipam.gateway_and_range(subnet, req.gateway, req.ip_range)
        options = check_overlay_options(dict(req.options or {}))
        network = Network(
            net_id=new_object_id(),
            name=req.name,
            driver=Driver.OVERLAY,
            scope=Scope.SWARM,
            subnet=str(subnet),
            gateway=gateway,
            ip_range=ip_range,
            vni=ipam.next_vni(
                cluster.vni_start - (1 if req.ingress else 0), [n.vni for n in existing]
            ),
            attachable=req.attachable,
            internal=req.internal,
            ingress=req.ingress,
            labels=dict(req.labels or {}),
            options=options,
            created_at=now_iso(),
        )
        if network.mtu and not 576 <= network.mtu <= 9000:
            raise InvalidArgument(f"invalid mtu {network.mtu}: use a value from 576 to 9000")
        return network

    async def create(self, req: NetworkRequest) -> Network:
        for _ in range(MAX_ATTEMPTS):
            lock = await self._store.get(keys.NETWORK_LOCK)
            lock_rev = lock.mod_revision if lock else 0
            items, _ = await self._store.list_prefix(keys.NETWORKS)
            existing = [decode(Network, kv.value) for kv in items]
            network = self._plan(req, existing)
            revision = await self._store.commit(
                [
                    Put(keys.network(network.net_id), encode(network)),
                    Put(keys.NETWORK_LOCK, network.net_id.encode()),
                ],
                [Expect(keys.NETWORK_LOCK, lock_rev)],
            )
            if revision is not None:
                await self._feed.wait_for(revision)
                return network
        raise Conflict("too many concurrent network changes; retry")

    def ingress(self) -> Network | None:
        return next((n for n in self._view.networks() if n.ingress), None)

    def _users(self, network: Network) -> tuple[list[str], list[str]]:
        """Who holds the network: endpoints (containers, tasks) and services naming it. The
        ingress sandboxes' endpoints and services' VIPs go with the network."""
        ignored = (EndpointKind.VIP, EndpointKind.SANDBOX)
        endpoints = {e.name for e in self._view.endpoints(network.net_id) if e.kind not in ignored}
        services = {s.spec.name for s in self._view.services() if network.net_id in s.spec.networks}
        return sorted(endpoints), sorted(services)

    def _only_leaving_tasks(self, network: Network) -> bool:
        """Whether every endpoint still on the network is a task's that is being shut down
        (its service removed or scaled down): what ``docker stack rm`` leaves behind when it
        removes a stack's networks right after its services."""
        held = [
            e
            for e in self._view.endpoints(network.net_id)
            if e.kind not in (EndpointKind.VIP, EndpointKind.SANDBOX)
        ]
        for endpoint in held:
            if endpoint.kind != EndpointKind.TASK:
                return False
            task = self._view.task(endpoint.owner_id)
            if task is not None and task.desired == TaskState.RUNNING:
                return False
        return bool(held)

    async def _wait_released(self, network: Network) -> None:
        """Until the leaving tasks' endpoints are released (their containers stopped, within
        their stop grace period), or LEAVING_WAIT_S. swarmkit marks such a network for
        deletion and deletes it once they are gone; Ferry's call waits for it instead."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEAVING_WAIT_S
        while loop.time() < deadline and self._only_leaving_tasks(network):
            await asyncio.sleep(0.2)

    async def remove(self, query: str) -> Network:
        network = self.find(query)
        endpoints, services = self._users(network)
        if not services and endpoints and self._only_leaving_tasks(network):
            await self._wait_released(network)
            endpoints, services = self._users(network)
        if services:
            raise Conflict(
                f"network {network.name} is in use by service(s) {', '.join(services)}: "
                "remove them first"
            )
        if endpoints:
            raise Conflict(
                f"network {network.name} has active endpoints ({', '.join(endpoints)}): "
                "stop or disconnect them first"
            )
        revision = await self._store.commit(
            [
                Delete(keys.network(network.net_id)),
                Delete(keys.endpoints_of(network.net_id), prefix=True),
                Delete(keys.ipam_prefix(network.net_id), prefix=True),
                Put(keys.NETWORK_LOCK, b"remove"),
            ]
        )
        if revision is not None:
            await self._feed.wait_for(revision)
        return network

    async def prune(self, chosen: Callable[[Network], bool] = lambda _: True) -> list[str]:
        """Remove the unused swarm networks ``chosen`` (by the prune filters); their names."""
        removed = []
        for network in self.all():
            if network.ingress or any(self._users(network)) or not chosen(network):
                continue
            await self.remove(network.net_id)
            removed.append(network.name)
        return removed

    # endpoints -------------------------------------------------------------------------------
    async def read_taken_ips(self, net_id: str) -> set[str]:
        """The addresses reserved on a network, from the store itself: after a lost race the
        mirror may not have caught up with the winner yet."""
        items, _ = await self._store.list_prefix(keys.ipam_prefix(net_id))
        return {keys.last_part(kv.key) for kv in items}

    def taken_ips(self, net_id: str) -> set[str]:
        return {keys.last_part(e.key) for e in self._view.mirror.entries(keys.ipam_prefix(net_id))}

    def plan_endpoint(
        self, network: Network, req: AttachRequest, taken: set[str]
    ) -> tuple[Endpoint, list[Put | Delete], list[Expect]]:
        """An endpoint with the next free address (added to ``taken``) and the operations that
        reserve it; commit them with the expectations, which fail if the address went meanwhile."""
        ip = ipam.assign(network.subnet, network.gateway, network.ip_range, req.ip, taken)
        endpoint = Endpoint(
            ep_id=new_hex_id(),
            net_id=network.net_id,
            node_id=req.node_id,
            ip=ip,
            mac=ipam.mac_for(ip),
            kind=req.kind,
            owner_id=req.owner_id,
            name=req.name,
            aliases=tuple(req.aliases),
            hostname=req.hostname,
            service=req.service,
        )
        ipam_key = keys.ipam(network.net_id, ip)
        ops: list[Put | Delete] = [
            Put(ipam_key, endpoint.ep_id.encode()),
            Put(keys.endpoint(network.net_id, endpoint.ep_id), encode(endpoint)),
        ]
        return endpoint, ops, [Expect(ipam_key, 0)]

    async def attach(self, net: str, ask: Ask) -> Endpoint:
        """An endpoint a node asked for through the cluster API, once the admission rules
        (``admission.admit``) agree; raises what they raise, NotFound, PoolExhausted."""
        network = self.find(net)
        facts = StoreFacts(
            nodes={n.node_id: n for n in self._view.nodes()},
            services=self._view.services(),
            endpoints=self._view.endpoints(network.net_id),
        )
        decided = admit(ask, network, facts)
        req = AttachRequest(
            net=network.net_id,
            node_id=decided.node_id,
            owner_id=decided.owner_id,
            name=decided.name,
            kind=EndpointKind(decided.kind),
            aliases=tuple(decided.aliases),
            hostname=decided.hostname,
            ip=decided.ip,
        )
        if req.kind == EndpointKind.CONTAINER:
            check_aliases(req.aliases)
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                taken = await self.read_taken_ips(network.net_id)
            else:
                taken = self.taken_ips(network.net_id)
            endpoint, ops, expect = self.plan_endpoint(network, req, taken)
            version = self._view.entity_version(keys.network(network.net_id))
            expect.append(Expect(keys.network(network.net_id), version))
            revision = await self._store.commit(ops, expect)
            if revision is not None:
                await self._feed.wait_for(revision)
                return endpoint
            if self._view.network(network.net_id) is None:
                raise NotFound(f"network {network.name} was removed meanwhile")
            if req.ip:
                raise InvalidArgument(f"address {req.ip} is already in use on this network")
        raise PoolExhausted(f"could not reserve an address on {network.name}; retry")

    async def release(self, net_id: str, ep_id: str, node_id: str | None = None) -> None:
        """Free an endpoint and its address (idempotent). With ``node_id`` (a node asking), only
        an endpoint of that node and of a kind nodes create (admission.NODE_KINDS): a task's
        endpoint goes with its task, a VIP with its service, both by the managers."""
        endpoint = self._view.mirror.obj(keys.endpoint(net_id, ep_id), Endpoint)
        if endpoint is None:
            return
        if node_id is not None and endpoint.node_id != node_id:
            raise Conflict(f"endpoint {ep_id[:12]} belongs to another node")
        if node_id is not None and endpoint.kind not in NODE_KINDS:
            raise Forbidden(
                f"endpoint {ep_id[:12]} is a {endpoint.kind.value} endpoint: the managers free "
                "it with its task or service"
            )
        revision = await self._store.commit(release_ops(endpoint))
        if revision is not None:
            await self._feed.wait_for(revision)
