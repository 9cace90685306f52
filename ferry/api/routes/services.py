"""/services and /tasks in Docker's shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from ferry.api import list_filters as lf
from ferry.api import params
from ferry.api.body import read_model
from ferry.api.hijack import frame
from ferry.api.models.services import ServiceSpecModel
from ferry.api.server import add_route
from ferry.api.service_spec import port_json, request_of, spec_json
from ferry.daemon.swarm import SwarmController
from ferry.errors import InvalidArgument, NotFound
from ferry.manager.manager import Manager
from ferry.manager.orchestrator import update_state
from ferry.manager.services import ServiceRequest, check_request
from ferry.manager.store import keys
from ferry.model.filters import matches as filters_match
from ferry.model.filters import one_of
from ferry.model.network import Endpoint, EndpointKind
from ferry.model.service import (
    Service,
    Task,
)
from ferry.runtime.execs import STDOUT


def _registry_options(request: web.Request, wanted: ServiceRequest) -> ServiceRequest:
    """Docker's ``X-Registry-Auth`` header (the nodes pull with it), and ``queryRegistry``:
    Ferry's client asks the manager to pin the image to its digest (the docker CLI pins it
    itself, through ``/distribution/{name}/json``, and never sends it)."""
    return replace(
        wanted,
        registry_auth=request.headers.get("X-Registry-Auth", ""),
        query_registry=params.boolean(request.query, "queryRegistry"),
    )


def _none(_ref: str) -> None:
    return None


class ServiceRoutes:
    def __init__(
        self, swarm: SwarmController, local_network: Callable[[str], object | None] = _none
    ) -> None:
        """``local_network``: this node's local network (bridge, macvlan, host…) by name or
        id, if any: a service naming one is refused in Docker's words."""
        self.swarm = swarm
        self.local_network = local_network

    def _check_swarm_scoped(self, manager: Manager, wanted: ServiceRequest) -> None:
        for ref in wanted.networks:
            if self.local_network(ref) is None:
                continue
            try:
                manager.networks.find(ref)
            except NotFound:
                raise InvalidArgument(  # moby daemon/cluster/services.go
                    f"The network {ref} cannot be used with services. Only networks scoped to "
                    "the swarm can be used, such as those created with the overlay driver."
                ) from None

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/services", self.list)
        add_route(app, "POST", "/services/create", self.create)
        add_route(app, "GET", "/services/{id}", self.inspect)
        add_route(app, "POST", "/services/{id}/update", self.update)
        add_route(app, "DELETE", "/services/{id}", self.remove)
        add_route(app, "GET", "/services/{id}/logs", self.logs)
        add_route(app, "GET", "/tasks", self.tasks)
        add_route(app, "GET", "/tasks/{id}", self.task)

    # rendering -------------------------------------------------------------------------------
    def _service(self, manager: Manager, svc: Service, status: bool) -> dict[str, Any]:
        view = manager.view
        vips = []
        for ep in view.endpoints():
            network = view.network(ep.net_id)
            if ep.kind == EndpointKind.VIP and ep.owner_id == svc.svc_id and network is not None:
                vips.append({"NetworkID": ep.net_id, "Addr": f"{ep.ip}/{network.prefixlen}"})
        out: dict[str, Any] = {
            "ID": svc.svc_id,
            "Version": {"Index": manager.services.version(svc)},
            "CreatedAt": svc.created_at,
            "UpdatedAt": svc.updated_at,
            "Spec": spec_json(svc.spec, svc.force_update),
            "Endpoint": {
                "Spec": {
                    "Mode": svc.spec.endpoint_mode.value,
                    "Ports": [port_json(p) for p in svc.spec.ports],
                },
                "Ports": [port_json(p) for p in svc.spec.ports],
                "VirtualIPs": vips,
            },
        }
        if svc.previous is not None:
            out["PreviousSpec"] = spec_json(svc.previous, svc.force_update)
        progress = manager.services.progress(svc)
        # derived from the tasks, so it cannot disagree with them: an update is under way while
        # a task that counts still runs an older version of the spec
        state = update_state(svc, progress.updating)
        if state is not None:
            out["UpdateStatus"] = {
                "State": state[0], "StartedAt": svc.rolled_at, "Message": state[1],
            }  # fmt: skip
        if status:
            out["ServiceStatus"] = {
                "RunningTasks": progress.running,
                "DesiredTasks": progress.desired,
                "CompletedTasks": 0,
            }
        return out

    def _task(
        self, manager: Manager, task: Task, endpoints: dict[str, list[Endpoint]]
    ) -> dict[str, Any]:
        view = manager.view
        attachments = []
        for ep in endpoints.get(task.task_id, []):
            net = view.network(ep.net_id)
            if net is not None:
                attachments.append(
                    {
                        "Network": {"ID": net.net_id, "Spec": {"Name": net.name}},
                        "Addresses": [f"{ep.ip}/{net.prefixlen}"],
                    }
                )
        return {
            "ID": task.task_id,
            "Version": {"Index": view.entity_version(keys.task(task.task_id))},
            "CreatedAt": task.created_at,
            "UpdatedAt": task.updated_at,
            "Name": task.name,
            "Labels": {},
            "Spec": {
                "ContainerSpec": {
                    "Image": task.template.image,
                    "Command": list(task.template.entrypoint or ()) or None,
                    "Args": list(task.template.cmd),
                    "Env": list(task.template.env),
                }
            },
            "ServiceID": task.svc_id,
            "Slot": task.slot,
            "NodeID": task.node_id,
            "Status": {
                "Timestamp": task.updated_at,
                "State": task.state.value,
                "Message": task.message,
                "Err": task.error,
                "ContainerStatus": {
                    "ContainerID": task.container_id,
                    "ExitCode": task.exit_code or 0,
                },
            },
            "DesiredState": task.desired.value,
            "NetworksAttachments": attachments,
        }

    # handlers --------------------------------------------------------------------------------
    async def list(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, lf.SERVICE_FILTERS)
        one_of(filters, "mode", lf.SERVICE_MODES)
        status = params.boolean(request.query, "status")
        manager = self.swarm.require_manager()
        out = []
        for svc in manager.services.all():
            spec = svc.spec
            rules = lf.service_rules(svc.svc_id, spec.name, spec.mode.value, spec.labels)
            if not filters_match(filters, rules):
                continue
            out.append(self._service(manager, svc, status))
        return web.json_response(out)

    async def create(self, request: web.Request) -> web.Response:
        # the spec is checked before the node's role: a wrong spec is wrong on any node
        wanted = _registry_options(request, request_of(await read_model(request, ServiceSpecModel)))
        check_request(wanted)
        manager = self.swarm.require_manager()
        self._check_swarm_scoped(manager, wanted)
        wanted, warnings = await manager.services.pin(wanted)
        svc = await manager.services.create(wanted)
        return web.json_response({"ID": svc.svc_id, "Warnings": warnings}, status=201)

    async def inspect(self, request: web.Request) -> web.Response:
        status = params.boolean(request.query, "status", True)
        manager = self.swarm.require_manager()
        svc = manager.services.find(request.match_info["id"])
        return web.json_response(self._service(manager, svc, status))

    async def update(self, request: web.Request) -> web.Response:
        version = params.object_version(request.query, "service")
        _refuse_update_options(request.query)
        model = await read_model(request, ServiceSpecModel)
        wanted = _registry_options(request, request_of(model))
        manager = self.swarm.require_manager()
        svc = manager.services.find(request.match_info["id"])
        if request.query.get("rollback") == "previous":
            # swarmkit takes the previous spec whole and ignores the one sent (the docker CLI
            # sends the current one); it is still checked, as any body is
            await manager.services.rollback(svc.svc_id, version)
            return web.json_response({"Warnings": []})
        if not wanted.registry_auth:  # Docker keeps the credentials the spec was given
            previous = request.query.get("registryAuthFrom") == "previous-spec" and svc.previous
            source = svc.previous if previous and svc.previous else svc.spec
            wanted = replace(wanted, registry_auth=source.template.registry_auth)
        wanted, warnings = await manager.services.pin(wanted)
        await manager.services.update(svc.svc_id, version, wanted, model.TaskTemplate.ForceUpdate)
        return web.json_response({"Warnings": warnings})

    async def remove(self, request: web.Request) -> web.Response:
        manager = self.swarm.require_manager()
        gone = manager.services.find(request.match_info["id"])
        await manager.services.remove(gone.svc_id)
        return web.Response(status=200)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        tail_lines = params.tail(request.query)
        tail = -1 if tail_lines is None else tail_lines
        details = params.boolean(request.query, "details")
        follow = params.boolean(request.query, "follow")
        if params.boolean(request.query, "timestamps"):
            raise InvalidArgument("Ferry's service logs carry no timestamps: leave out -t")
        if request.query.get("since", "0") not in ("", "0"):
            raise InvalidArgument("Ferry's service logs carry no times: leave out --since")
        manager = self.swarm.require_manager()
        svc = manager.services.find(request.match_info["id"])
        names = {t.task_id: t.name for t in manager.view.tasks(svc.svc_id)}
        hosts = {n.node_id: n.hostname for n in manager.view.nodes()}
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.docker.multiplexed-stream"}
        )
        await response.prepare(request)
        lines = manager.logs.collect(svc, tail, follow)
        try:
            async for line in lines:
                if details:  # the docker CLI renders the prefix itself from these
                    attrs = (
                        f"com.docker.swarm.node.id={line.node_id},"
                        f"com.docker.swarm.service.id={svc.svc_id},"
                        f"com.docker.swarm.task.id={line.task_id}"
                    )
                    text = f"{attrs} ".encode() + line.text + b"\n"
                else:
                    who = f"{names.get(line.task_id, line.task_id)}@{hosts.get(line.node_id, '?')}"
                    text = f"{who}    | ".encode() + line.text + b"\n"
                await response.write(frame(STDOUT, text))
        except ConnectionResetError:
            pass  # the client went away: closing the generator ends the nodes' following
        finally:
            await lines.aclose()
        return response

    async def tasks(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, lf.TASK_FILTERS)
        one_of(filters, "desired-state", lf.DESIRED_STATES)
        manager = self.swarm.require_manager()
        # references resolve as Docker resolves them (a name, an id or its prefix); an
        # unknown one is a 404, as in Docker
        services = {manager.services.find(ref).svc_id for ref in filters.get("service", [])}
        nodes = {manager.nodes.find(ref).node_id for ref in filters.get("node", [])}
        out = []
        endpoints = _task_endpoints(manager)
        for task in manager.view.tasks():
            svc = manager.view.service(task.svc_id)
            current = svc is not None and task.spec_version == svc.spec_version
            labels = svc.spec.labels if svc is not None else {}
            rules = lf.task_rules(task, services, nodes, current, labels)
            if not filters_match(filters, rules):
                continue
            out.append(self._task(manager, task, endpoints))
        out.sort(key=lambda t: (t["ServiceID"], t["Slot"], t["CreatedAt"]), reverse=False)
        return web.json_response(out)

    async def task(self, request: web.Request) -> web.Response:
        manager = self.swarm.require_manager()
        ref = request.match_info["id"]
        for task in manager.view.tasks():
            if task.task_id == ref or task.task_id.startswith(ref):
                return web.json_response(self._task(manager, task, _task_endpoints(manager)))
        return web.json_response({"message": f"task {ref} not found"}, status=404)


def _refuse_update_options(query: params.Query) -> None:
    """Update options Ferry does not honour: refused, not ignored."""
    if query.get("registryAuthFrom", "spec") not in ("spec", "previous-spec"):
        raise InvalidArgument("invalid registryAuthFrom: use spec or previous-spec")
    if query.get("rollback", "") not in ("", "previous"):
        raise InvalidArgument('invalid rollback: use "previous"')


def _task_endpoints(manager: Manager) -> dict[str, list[Endpoint]]:
    """Task endpoints by task id, indexed once per request (not scanned once per task)."""
    index: dict[str, list[Endpoint]] = {}
    for ep in manager.view.endpoints():
        if ep.kind == EndpointKind.TASK:
            index.setdefault(ep.owner_id, []).append(ep)
    return index
