"""/networks in Docker's shapes: swarm networks from the cluster, local ones (bridge, macvlan,
the egress bridge) from this host."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from ferry.agent.containers import ContainerService
from ferry.agent.local_networks import LocalNetworks
from ferry.api import list_filters as lf
from ferry.api import params, render
from ferry.api.body import SMALL_BODY_BYTES, read_model
from ferry.api.models.containers import (
    IpamConfigEntry,
    NetworkConnect,
    NetworkCreate,
    NetworkDisconnect,
)
from ferry.api.run_options import refused_endpoint
from ferry.api.server import add_route
from ferry.daemon.swarm import SwarmController
from ferry.errors import Conflict, Forbidden, InvalidArgument, NotFound
from ferry.manager.store.view import ClusterView
from ferry.model.container import NETWORK_HOST, NETWORK_NONE, NetworkChoice
from ferry.model.filters import matches as filters_match
from ferry.model.filters import until_s
from ferry.model.ids import lookup
from ferry.model.network import (
    GWBRIDGE,
    Driver,
    Network,
    NetworkRequest,
    Scope,
    check_network_name,
    network_names,
)
from ferry.model.rules import check_labels
from ferry.model.times import epoch
from ferry.network import ipam

LOCAL_DRIVERS = (Driver.BRIDGE.value, Driver.MACVLAN.value)
# ``scope`` of GET /networks/{id}: Docker's scopes (a global one is a multi-host network of a
# pre-swarm key-value store, which Ferry has none of: such a lookup finds nothing)
SCOPES = ("swarm", "global", "local")


class NetworkRoutes:
    def __init__(
        self, swarm: SwarmController, containers: ContainerService, local: LocalNetworks
    ) -> None:
        self.swarm = swarm
        self.containers = containers
        self.local = local

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/networks", self.list)
        add_route(app, "POST", "/networks/create", self.create)
        add_route(app, "POST", "/networks/prune", self.prune)
        add_route(app, "GET", "/networks/{id}", self.inspect)
        add_route(app, "DELETE", "/networks/{id}", self.remove)
        add_route(app, "POST", "/networks/{id}/connect", self.connect)
        add_route(app, "POST", "/networks/{id}/disconnect", self.disconnect)

    def _gwbridge_id(self) -> str | None:
        """The egress bridge exists on swarm members (as docker_gwbridge does)."""
        if self.swarm.membership is None:
            return None
        seed = f"{GWBRIDGE}/{self.swarm.membership.node_id}".encode()
        return hashlib.sha256(seed).hexdigest()

    def _gwbridge(self, ref: str) -> dict[str, object] | None:
        net_id = self._gwbridge_id()
        if net_id is None or (ref != GWBRIDGE and not net_id.startswith(ref)):
            return None
        return render.gwbridge(net_id, self.containers.all(), self.local.egress_subnet())

    def _view(self) -> ClusterView | None:
        if self.swarm.manager is not None:
            return self.swarm.manager.view
        return self.swarm.agent.view if self.swarm.agent is not None else None

    def _find(self, ref: str, scope: str = "") -> Network:
        """The network ``ref`` names (this host's first), of ``scope`` when one is given: as
        Docker's ``getNetwork``, a network of another scope is not looked at, so one not of
        that scope is ``NotFound("network X not found")``."""
        local = self.local.find(ref) if scope in ("", Scope.LOCAL) else None
        if local is not None:
            return local
        view = self._view() if scope in ("", Scope.SWARM) else None
        swarm = lookup(view.networks(), ref, network_names, "network") if view else None
        if swarm is None:
            raise NotFound(f"network {ref} not found")
        return swarm

    def _render(self, net: Network, verbose: bool = False) -> dict[str, object]:
        """``verbose`` adds Docker's ``Services`` (every node's tasks) to a swarm network."""
        if net.scope == Scope.LOCAL:
            return render.local_network(net, self.containers.all())
        view = self._view()
        assert view is not None
        nodes = {n.node_id: n for n in view.nodes()}
        membership = self.swarm.membership
        node_id = membership.node_id if membership is not None else ""
        endpoints = view.live_endpoints(net.net_id, own=node_id)
        out = render.network(net, endpoints, nodes, node_id, self.containers.all())
        if verbose:
            out["Services"] = render.network_services(net, endpoints, nodes)
        return out

    async def list(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, lf.NETWORK_FILTERS)
        lf.check_network_filters(filters)
        view = self._view()
        networks = [*self.local.all(), *(view.networks() if view else [])]
        out = [self._render(net) for net in networks]
        bridge = self._gwbridge(GWBRIDGE)
        if bridge is not None:
            out.append(bridge)
        out += [render.mode_network(mode, self.containers.all()) for mode in MODES]
        return web.json_response(
            sorted(
                (n for n in out if filters_match(filters, lf.network_rules(n, _in_use(n)))),
                key=lambda n: str(n["Name"]),
            )
        )

    async def inspect(self, request: web.Request) -> web.Response:
        """``verbose`` and ``scope`` (swarm, global or local: only a network of that scope is
        found; another value is refused) as Docker's ``GET /networks/{id}``."""
        ref = request.match_info["id"]
        verbose = params.boolean(request.query, "verbose")
        scope = params.choice(request.query, "scope", SCOPES, "")
        if scope in ("", Scope.LOCAL):  # the egress bridge, host and none are this host's
            bridge = self._gwbridge(ref)
            if bridge is not None:
                return web.json_response(bridge)
            mode = _mode(ref)
            if mode:
                return web.json_response(render.mode_network(mode, self.containers.all()))
        return web.json_response(self._render(self._find(ref, scope), verbose))

    async def create(self, request: web.Request) -> web.Response:
        body = await read_model(request, NetworkCreate)
        req = network_request(body)
        if req.driver in LOCAL_DRIVERS:
            if body.Scope == Scope.SWARM:
                raise InvalidArgument(
                    f"{req.driver} networks are local to a host in Ferry: leave out --scope swarm"
                )
            local = await self.local.create(req)
            self._event("create", local.net_id, local.name, str(req.driver))
            return web.json_response({"Id": local.net_id, "Warning": ""}, status=201)
        if req.driver != Driver.OVERLAY:
            raise InvalidArgument(
                f"unknown network driver {req.driver!r}: use bridge, macvlan or overlay"
            )
        if self.local.find(req.name) is not None or req.name in MODES:
            raise Conflict(f"network with name {req.name} already exists on this host")
        manager = self.swarm.require_manager()
        network = await manager.networks.create(req)
        self._event("create", network.net_id, network.name, str(req.driver), "swarm")
        return web.json_response({"Id": network.net_id, "Warning": ""}, status=201)

    async def remove(self, request: web.Request) -> web.Response:
        ref = request.match_info["id"]
        if _mode(ref):
            raise Forbidden(f"{_mode(ref)} is a pre-defined network and cannot be removed")
        if self.local.find(ref) is not None:
            gone = await self.local.remove(ref)
            self._event("destroy", gone.net_id, gone.name, gone.driver.value)
            return web.Response(status=204)
        if ref == GWBRIDGE or self._gwbridge(ref) is not None:
            raise Conflict(
                f"{GWBRIDGE} is the egress bridge of this swarm node: it cannot be removed"
            )
        manager = self.swarm.require_manager()
        swarm_net = await manager.networks.remove(ref)
        self._event("destroy", swarm_net.net_id, swarm_net.name, swarm_net.driver.value, "swarm")
        return web.Response(status=204)

    def _event(
        self, action: str, net_id: str, name: str, driver: str, scope: str = "local"
    ) -> None:
        self.containers.events.publish(
            "network", action, net_id, {"name": name, "type": driver}, scope
        )

    async def prune(self, request: web.Request) -> web.Response:
        """Unused local networks here; on a manager also unused swarm networks (as Docker)."""
        filters = params.filters(request.query, lf.NETWORK_PRUNE_FILTERS)
        for value in filters.get("until", []):
            until_s(value)  # a wrong time is refused before anything is removed

        def chosen(net: Network) -> bool:
            created = epoch(net.created_at) if net.created_at else 0.0
            return filters_match(filters, lf.prune_rules(net.labels, created, until_s))

        removed = []
        for net in self.local.all():
            if not chosen(net):
                continue
            try:
                await self.local.remove(net.net_id)
            except Conflict:
                continue
            removed.append(net.name)
        if self.swarm.manager is not None and not self.swarm.locked:
            removed += await self.swarm.manager.networks.prune(chosen)
        return web.json_response({"NetworksDeleted": removed})

    async def connect(self, request: web.Request) -> web.Response:
        body = await read_model(request, NetworkConnect, SMALL_BODY_BYTES)
        net = self._find(request.match_info["id"])
        settings = body.EndpointConfig
        names = refused_endpoint(settings, "EndpointConfig.")
        if names:
            raise InvalidArgument(f"Ferry does not support {', '.join(sorted(names))}")
        choice = NetworkChoice(
            net.name,
            tuple(settings.Aliases or []) if settings else (),
            settings.IPAMConfig.IPv4Address if settings and settings.IPAMConfig else "",
        )
        await self.containers.connect(body.Container, choice)
        return web.Response(status=200)

    async def disconnect(self, request: web.Request) -> web.Response:
        body = await read_model(request, NetworkDisconnect, SMALL_BODY_BYTES)
        ref = request.match_info["id"]
        try:
            net_id = self._find(ref).net_id
        except NotFound:
            net_id = ref  # removed since: a stopped container may still name it, let it go
        await self.containers.disconnect(body.Container, net_id)
        return web.Response(status=200)


def network_request(body: NetworkCreate) -> NetworkRequest:
    """``network create`` as asked, with what can be checked without the cluster checked first
    (name, driver, labels, IPAM shape: one IPv4 subnet, no special-purpose block)."""
    check_network_name(body.Name)
    if body.Driver not in (*LOCAL_DRIVERS, Driver.OVERLAY.value):
        raise InvalidArgument(
            f"unknown network driver {body.Driver!r}: use bridge, macvlan or overlay"
        )
    check_labels(body.Labels)
    ipam_in = body.IPAM
    if ipam_in and ipam_in.Driver not in ("", "default"):
        raise InvalidArgument(
            f"IPAM driver {ipam_in.Driver!r} is not supported: Ferry's IPAM is the default"
        )
    config = ipam_in.Subnets if ipam_in else []
    if len(config) > 1:
        raise InvalidArgument("Ferry networks have one IPv4 subnet: give --subnet once")
    entry = config[0] if config else IpamConfigEntry()
    if body.EnableIPv6:
        raise InvalidArgument("IPv6 networks are not supported")
    if not config and ipam_in and (ipam_in.Options or {}):
        raise InvalidArgument("IPAM options need a --subnet")
    if entry.Subnet:
        ipam.gateway_and_range(ipam.parse_subnet(entry.Subnet), entry.Gateway, entry.IPRange)
    elif entry.Gateway or entry.IPRange:
        raise InvalidArgument("--gateway and --ip-range need --subnet")
    return NetworkRequest(
        name=body.Name,
        driver=body.Driver,
        subnet=entry.Subnet,
        gateway=entry.Gateway,
        ip_range=entry.IPRange,
        internal=body.Internal,
        attachable=body.Attachable,
        ingress=body.Ingress,
        labels=dict(body.Labels or {}),
        options=dict(body.Options or {}),
    )


def _in_use(net: dict[str, Any]) -> bool:
    """Docker's ``dangling=false``: a network with containers or services on it; a
    pre-defined network is never dangling (libnetwork's ``filterNetworkByUse``)."""
    return (
        net["Name"] in lf.BUILTIN_NETWORKS
        or bool(net.get("Containers"))
        or bool(net.get("Services"))
    )


MODES = (NETWORK_HOST, NETWORK_NONE)


def _mode(ref: str) -> str:
    """``host`` or ``none`` when ``ref`` names one (by name or id prefix), else ""."""
    for mode in MODES:
        if ref == mode or (len(ref) >= 6 and render.mode_network_id(mode).startswith(ref)):
            return mode
    return ""
