"""The cluster API on port 2377: how agents and joiners talk to a manager.

Every route demands a client certificate of this cluster's CA, except two: ``GET /v1/ca``
(a joiner fetches the CA and checks it against the digest in its token before trusting us) and
``POST /v1/join`` (which demands a valid token instead). The certificate names the caller's node
id and role; handlers act for that node only.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from ferry.doctor.findings import Finding
from ferry.errors import Forbidden, InvalidArgument
from ferry.manager import ca
from ferry.manager.admission import Ask
from ferry.manager.doctor import DoctorRelay
from ferry.manager.join import JoinService
from ferry.manager.logs import LogRelay
from ferry.manager.networks import NetworkOps
from ferry.manager.nodes import NodeOps
from ferry.manager.services import ServiceOps
from ferry.manager.sessions import SessionHub
from ferry.manager.store.view import ClusterView
from ferry.manager.task_files import TaskFiles
from ferry.manager.vault import Vault, hand_over
from ferry.manager.wire import (
    AttachBody,
    Heartbeat,
    JoinRequest,
    RenewRequest,
    RoleRequest,
    TaskStatusBody,
)
from ferry.model.codec import encode
from ferry.model.node import Role
from ferry.model.ports import CLUSTER_PORT
from ferry.model.root_rotation import NodeTLS
from ferry.model.service import TaskState
from ferry.weberrors import Handler, errors_middleware

PORT = CLUSTER_PORT
PUBLIC_PATHS = frozenset({"/v1/ca", "/v1/join"})

RouteAdder = Callable[[web.RouteTableDef], None]


def server_context(ca_path: Path, cert_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_path))
    ctx.load_cert_chain(str(cert_path), str(key_path))
    # Optional at the TLS layer so joiners without a certificate can reach /v1/join; every other
    # path is refused below unless a certificate of our CA was presented (and verified by TLS).
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def peer_identity(request: web.Request) -> ca.Identity | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    return ca.identity_of_der(der) if der else None


def caller(request: web.Request) -> ca.Identity:
    identity: ca.Identity = request["identity"]
    return identity


def peer_ip(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return str(peer[0]) if peer else ""


class ClusterApi:
    def __init__(
        self,
        cluster_id: str,
        hub: SessionHub,
        joins: JoinService,
        nodes: NodeOps,
        extra_routes: list[RouteAdder] | None = None,
    ) -> None:
        self._cluster_id = cluster_id
        self._hub = hub
        self._joins = joins
        self._nodes = nodes
        self._extra_routes = extra_routes or []
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS:
            identity = peer_identity(request)
            if identity is None:
                raise Forbidden("this call needs a node certificate of the cluster")
            if identity.cluster_id != self._cluster_id:
                raise Forbidden("certificate belongs to another swarm")
            request["identity"] = identity
        return await handler(request)

    def app(self, ca_pem: str) -> web.Application:
        routes = web.RouteTableDef()

        @routes.get("/v1/ca")
        async def get_ca(_request: web.Request) -> web.Response:
            return web.json_response(self._joins.ca_document() or {"ca_pem": ca_pem})

        @routes.post("/v1/join")
        async def join(request: web.Request) -> web.Response:
            body = JoinRequest.model_validate_json(await request.read())
            response = await self._joins.join(body, peer_ip(request))
            return web.json_response(text=response.model_dump_json())

        @routes.post("/v1/heartbeat")
        async def heartbeat(request: web.Request) -> web.Response:
            beat = Heartbeat.model_validate_json(await request.read() or b"{}")
            reply = await self._hub.heartbeat(
                caller(request).node_id,
                tuple(beat.images),
                tuple(sorted(beat.ports)),
                beat.wg_key,
                NodeTLS(**beat.tls.model_dump()) if beat.tls.trust_root else None,
            )
            return web.json_response(text=reply.model_dump_json())

        @routes.get("/v1/session")
        async def session(request: web.Request) -> web.StreamResponse:
            identity = caller(request)
            stream = self._hub.stream(identity.node_id, identity.role)
            first = await anext(stream)  # membership is checked before the response starts
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
            try:
                await response.write(first)
                async for line in stream:
                    await response.write(line)
            except ConnectionResetError:
                pass  # the agent went away; it will open a new session
            finally:
                await stream.aclose()
            return response

        @routes.post("/v1/promote")
        async def promote(request: web.Request) -> web.Response:
            identity = caller(request)
            node = self._nodes.find(identity.node_id)
            # the certificate and the store both: a demoted manager's old certificate is not
            # enough, nor a record that was never promoted
            if identity.role != "manager" or node.left or node.wanted_role != Role.MANAGER:
                raise Forbidden("only a manager's store member can be promoted")
            await self._joins.promote(node.addr)
            await self._nodes.complete_promotion(node.node_id)
            return web.json_response({})

        @routes.post("/v1/renew")
        async def renew(request: web.Request) -> web.Response:
            body = RenewRequest.model_validate_json(await request.read())
            cert_pem = await self._joins.renew_certificate(caller(request), body.csr_pem)
            return web.json_response({"cert_pem": cert_pem})

        @routes.post("/v1/role")
        async def take_role(request: web.Request) -> web.Response:
            body = RoleRequest.model_validate_json(await request.read())
            response = await self._joins.take_role(caller(request).node_id, body)
            return web.json_response(text=response.model_dump_json())

        @routes.post("/v1/leave")
        async def leave(request: web.Request) -> web.Response:
            await self._nodes.mark_left(caller(request).node_id)
            return web.json_response({})

        for add in self._extra_routes:
            add(routes)
        app = web.Application(middlewares=[errors_middleware, self._auth])
        app.add_routes(routes)
        return app

    async def start(self, ca_pem: str, listen_addr: str, ssl_context: ssl.SSLContext) -> None:
        host, _, port = listen_addr.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(f"invalid listen address {listen_addr!r}: use HOST:PORT")
        self._runner = web.AppRunner(
            self.app(ca_pem), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, host, int(port), ssl_context=ssl_context, reuse_address=True
        )
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def attachment_routes(networks: NetworkOps) -> RouteAdder:
    """Endpoints for a node's standalone containers and its ingress sandbox: for the node named
    by its certificate, of the kinds ``admission.admit`` allows it."""

    def add(routes: web.RouteTableDef) -> None:
        @routes.post("/v1/attachments")
        async def attach(request: web.Request) -> web.Response:
            body = AttachBody.model_validate_json(await request.read())
            ask = Ask(
                node_id=caller(request).node_id,
                owner_id=body.owner_id,
                name=body.name,
                kind=body.kind,
                aliases=tuple(body.aliases),
                hostname=body.hostname,
                ip=body.ip,
            )
            endpoint = await networks.attach(body.net, ask)
            return web.json_response(text=encode(endpoint).decode())

        @routes.delete("/v1/attachments/{net_id}/{ep_id}")
        async def release(request: web.Request) -> web.Response:
            await networks.release(
                request.match_info["net_id"], request.match_info["ep_id"], caller(request).node_id
            )
            return web.json_response({})

    return add


def key_routes(vault: Vault, view: ClusterView) -> RouteAdder:
    """A manager of a swarm formed by an older ferryd gets the KEK from another manager
    (store_upgrade.py): see ``vault.hand_over`` for who may."""

    def add(routes: web.RouteTableDef) -> None:
        @routes.get("/v1/managers/unlock-key")
        async def unlock_key(request: web.Request) -> web.Response:
            identity = caller(request)
            key = hand_over(vault, view, identity.node_id, identity.role)
            return web.json_response({"unlock_key": key})

    return add


def task_routes(services: ServiceOps, files: TaskFiles) -> RouteAdder:
    """Agents report how their tasks are doing, and fetch their tasks' secrets and configs."""

    def add(routes: web.RouteTableDef) -> None:
        @routes.get("/v1/tasks/{task_id}/files")
        async def task_files(request: web.Request) -> web.Response:
            found = files.for_node(caller(request).node_id, request.match_info["task_id"])
            return web.json_response({"Files": found})

        @routes.post("/v1/tasks/{task_id}/status")
        async def status(request: web.Request) -> web.Response:
            body = TaskStatusBody.model_validate_json(await request.read())
            await services.task_status(
                caller(request).node_id,
                request.match_info["task_id"],
                TaskState(body.state),
                message=body.message,
                error=body.error,
                container_id=body.container_id,
                exit_code=body.exit_code,
            )
            return web.json_response({})

    return add


def log_routes(relay: LogRelay) -> RouteAdder:
    """Nodes send the log lines a manager asked them for."""

    def add(routes: web.RouteTableDef) -> None:
        @routes.post("/v1/logs/{req_id}")
        async def deliver(request: web.Request) -> web.Response:
            async def lines() -> AsyncIterator[bytes]:
                async for line in request.content:
                    yield line

            await relay.deliver(request.match_info["req_id"], caller(request).node_id, lines())
            return web.json_response({})

    return add


def doctor_routes(relay: DoctorRelay) -> RouteAdder:
    """Nodes send what ``ferry doctor --all`` asked them to find (for themselves only)."""

    def add(routes: web.RouteTableDef) -> None:
        @routes.post("/v1/doctor/{req_id}")
        async def deliver(request: web.Request) -> web.Response:
            raw = await request.json()
            if not isinstance(raw, list):
                raise InvalidArgument("findings must be a list")
            try:
                findings = [Finding.from_json(item) for item in raw]
            except (KeyError, TypeError, AttributeError) as exc:
                raise InvalidArgument(f"malformed finding: {exc}") from exc
            relay.deliver(request.match_info["req_id"], caller(request).node_id, findings)
            return web.json_response({})

    return add
