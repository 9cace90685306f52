"""/networks in Docker's shapes: swarm networks from the cluster, attachments from here."""

from __future__ import annotations

import hashlib

from aiohttp import web

from ferry.agent.containers import ContainerService
from ferry.api import render
from ferry.api.models.containers import NetworkConnect, NetworkCreate, NetworkDisconnect
from ferry.api.server import add_route, query_filters, read_json
from ferry.daemon.swarm import SwarmController
from ferry.errors import InvalidArgument, NotFound
from ferry.manager.networks import NetworkRequest
from ferry.manager.store.view import ClusterView
from ferry.model.container import NetworkChoice
from ferry.model.network import GWBRIDGE, Network


class NetworkRoutes:
    def __init__(self, swarm: SwarmController, containers: ContainerService) -> None:
        self.swarm = swarm
        self.containers = containers

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
        return render.gwbridge(net_id, self.containers.all())

    def _view(self) -> ClusterView | None:
        if self.swarm.manager is not None:
            return self.swarm.manager.view
        return self.swarm.agent.view if self.swarm.agent is not None else None

    def _find(self, ref: str) -> tuple[ClusterView, Network]:
        view = self._view()
        if view is not None:
            networks = view.networks()
            for net in networks:
                if ref in (net.net_id, net.name):
                    return view, net
            prefixed = [n for n in networks if n.net_id.startswith(ref)]
            if len(prefixed) == 1:
                return view, prefixed[0]
        raise NotFound(f"network {ref} not found")

    def _render(self, view: ClusterView, net: Network) -> dict[str, object]:
        nodes = {n.node_id: n for n in view.nodes()}
        return render.network(net, view.endpoints(net.net_id), nodes)

    async def list(self, request: web.Request) -> web.Response:
        view = self._view()
        filters = query_filters(request)
        out: list[dict[str, object]] = []
        bridge = self._gwbridge(GWBRIDGE)
        if bridge is not None and all(
            any(f in str(bridge[k]) for f in filters[key])
            for key, k in (("name", "Name"), ("driver", "Driver"), ("id", "Id"))
            if key in filters
        ):
            out.append(bridge)
        for net in sorted(view.networks() if view else [], key=lambda n: n.name):
            if "name" in filters and not any(f in net.name for f in filters["name"]):
                continue
            if "driver" in filters and net.driver.value not in filters["driver"]:
                continue
            if "id" in filters and not any(net.net_id.startswith(f) for f in filters["id"]):
                continue
            assert view is not None
            out.append(self._render(view, net))
        return web.json_response(out)

    async def inspect(self, request: web.Request) -> web.Response:
        bridge = self._gwbridge(request.match_info["id"])
        if bridge is not None:
            return web.json_response(bridge)
        view, net = self._find(request.match_info["id"])
        return web.json_response(self._render(view, net))

    async def create(self, request: web.Request) -> web.Response:
        body = NetworkCreate.model_validate(await read_json(request))
        manager = self.swarm.require_manager()
        config = body.IPAM.Config if body.IPAM else []
        if len(config) > 1:
            raise InvalidArgument("Ferry networks have one IPv4 subnet: give --subnet once")
        entry = config[0] if config else None
        if body.EnableIPv6:
            raise InvalidArgument("IPv6 networks are not supported")
        if entry is None and body.IPAM and (body.IPAM.Options or {}):
            raise InvalidArgument("IPAM options need a --subnet")
        if entry is not None and not entry.Subnet and (entry.Gateway or entry.IPRange):
            raise InvalidArgument("--gateway and --ip-range need --subnet")
        network = await manager.networks.create(
            NetworkRequest(
                name=body.Name,
                driver=body.Driver,
                subnet=entry.Subnet if entry else "",
                gateway=entry.Gateway if entry else "",
                ip_range=entry.IPRange if entry else "",
                attachable=body.Attachable,
                internal=body.Internal,
                ingress=body.Ingress,
                labels=body.Labels,
                options=body.Options,
            )
        )
        return web.json_response({"Id": network.net_id, "Warning": ""}, status=201)

    async def remove(self, request: web.Request) -> web.Response:
        manager = self.swarm.require_manager()
        await manager.networks.remove(request.match_info["id"])
        return web.Response(status=204)

    async def prune(self, _request: web.Request) -> web.Response:
        manager = self.swarm.require_manager()
        removed = await manager.networks.prune()
        return web.json_response({"NetworksDeleted": removed})

    async def connect(self, request: web.Request) -> web.Response:
        body = NetworkConnect.model_validate(await read_json(request))
        _, net = self._find(request.match_info["id"])
        settings = body.EndpointConfig
        choice = NetworkChoice(
            net.name,
            tuple(settings.Aliases or []) if settings else (),
            settings.IPAMConfig.IPv4Address if settings and settings.IPAMConfig else "",
        )
        await self.containers.connect(body.Container, choice)
        return web.Response(status=200)

    async def disconnect(self, request: web.Request) -> web.Response:
        body = NetworkDisconnect.model_validate(await read_json(request))
        _, net = self._find(request.match_info["id"])
        await self.containers.disconnect(body.Container, net.net_id)
        return web.Response(status=200)
