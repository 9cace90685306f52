"""/swarm and /nodes in Docker's shapes."""

from __future__ import annotations

import base64

from aiohttp import web

from ferry.api import list_filters as lf
from ferry.api import params
from ferry.api.body import SMALL_BODY_BYTES, read_model
from ferry.api.models.base import ObjectVersion
from ferry.api.models.swarm import (
    EngineDescription,
    JoinTokens,
    ManagerStatus,
    NodeDescription,
    NodeObject,
    NodeResources,
    NodeSpec,
    NodeStatus,
    SwarmInitRequest,
    SwarmInspect,
    SwarmJoinRequest,
    SwarmSpec,
    TLSInfo,
    UnlockKey,
    data_path_refused,
    refuse,
)
from ferry.api.server import add_route, json_model
from ferry.daemon.swarm import InitOptions, SwarmController
from ferry.errors import Conflict, InvalidArgument, Unavailable
from ferry.manager import ca, sealing
from ferry.manager.cluster_api import PORT
from ferry.manager.cluster_settings import set_settings
from ferry.manager.nodes import NodeState
from ferry.model.cluster import DEFAULT_POOL, DEFAULT_SUBNET_SIZE, NODE_CERT_EXPIRY_S
from ferry.model.filters import matches as filters_match
from ferry.model.filters import one_of
from ferry.model.node import NodeStatus as Liveness
from ferry.model.node import Role
from ferry.model.rules import check_labels
from ferry.model.service import TASK_HISTORY
from ferry.network import ipam

# Docker's ManagerStatus.Reachability for each node state
_REACHABILITY = {
    Liveness.READY: "reachable",
    Liveness.UNKNOWN: "unknown",
    Liveness.DOWN: "unreachable",
}


def node_object(state: NodeState) -> NodeObject:
    node = state.node
    manager_status = None
    if node.role == Role.MANAGER and not node.left:
        manager_status = ManagerStatus(
            Leader=state.leader,
            Reachability=_REACHABILITY[state.status],
            Addr=f"{node.addr}:{PORT}",
        )
    return NodeObject(
        ID=node.node_id,
        Version=ObjectVersion(Index=state.version),
        CreatedAt=node.created_at,
        UpdatedAt=node.updated_at,
        Spec=NodeSpec(
            Labels=node.labels,
            Role=node.wanted_role.value,
            Availability=node.availability.value,
        ),
        Description=NodeDescription(
            Hostname=node.hostname,
            Engine=EngineDescription(EngineVersion=node.engine_version),
            Resources=NodeResources(NanoCPUs=node.ncpu * 10**9, MemoryBytes=node.memory_bytes),
            TLSInfo=TLSInfo(
                TrustRoot=node.tls.trust_root,
                CertIssuerSubject=node.tls.issuer_subject,
                CertIssuerPublicKey=node.tls.issuer_key,
            ),
        ),
        Status=NodeStatus(State=state.status.value, Addr=node.addr),
        ManagerStatus=manager_status,
    )


class SwarmRoutes:
    def __init__(self, swarm: SwarmController) -> None:
        self.swarm = swarm

    def register(self, app: web.Application) -> None:
        add_route(app, "POST", "/swarm/init", self.init)
        add_route(app, "POST", "/swarm/join", self.join)
        add_route(app, "POST", "/swarm/leave", self.leave)
        add_route(app, "GET", "/swarm", self.inspect)
        add_route(app, "POST", "/swarm/update", self.update)
        add_route(app, "GET", "/swarm/unlockkey", self.unlock_key)
        add_route(app, "POST", "/swarm/unlock", self.unlock)
        add_route(app, "GET", "/nodes", self.list_nodes)
        add_route(app, "GET", "/nodes/{node}", self.inspect_node)
        add_route(app, "POST", "/nodes/{node}/update", self.update_node)
        add_route(app, "DELETE", "/nodes/{node}", self.remove_node)

    async def init(self, request: web.Request) -> web.Response:
        body = await read_model(request, SwarmInitRequest, SMALL_BODY_BYTES)
        refuse(body.refused())
        data_path_port = body.data_path_port()
        if len(body.DefaultAddrPool) > 1:
            raise InvalidArgument("Ferry supports one default address pool")
        _refuse_unsupported(body.Spec)
        limit = body.Spec.task_history()
        if limit is not None and limit != TASK_HISTORY:
            raise InvalidArgument(
                f"swarm init does not take --task-history-limit {limit} "
                "(Orchestration.TaskHistoryRetentionLimit): form the swarm, then "
                f"'swarm update --task-history-limit {limit}'"
            )
        expiry = body.Spec.cert_expiry_s()
        if expiry is not None and expiry != NODE_CERT_EXPIRY_S:
            raise InvalidArgument(
                "swarm init does not take --cert-expiry (CAConfig.NodeCertExpiry): form the "
                "swarm, then 'swarm update --cert-expiry DURATION'"
            )
        pool = body.DefaultAddrPool[0] if body.DefaultAddrPool else DEFAULT_POOL
        ipam.check_pool(pool, body.SubnetSize or DEFAULT_SUBNET_SIZE)
        options = InitOptions(
            advertise_addr=body.AdvertiseAddr,
            listen_addr=body.ListenAddr or f"0.0.0.0:{PORT}",
            default_pool=pool,
            subnet_size=body.SubnetSize or DEFAULT_SUBNET_SIZE,
            availability=body.Availability or "active",
            autolock=body.Spec.EncryptionConfig.AutoLockManagers,
            force_new_cluster=body.ForceNewCluster,
            data_path_port=data_path_port,
        )
        return web.json_response(await self.swarm.init(options))

    async def join(self, request: web.Request) -> web.Response:
        body = await read_model(request, SwarmJoinRequest, SMALL_BODY_BYTES)
        refuse(data_path_refused(body.DataPathAddr))
        await self.swarm.join(
            body.RemoteAddrs, body.JoinToken, body.AdvertiseAddr, body.ListenAddr, body.Availability
        )
        return web.Response(status=200)

    async def leave(self, request: web.Request) -> web.Response:
        await self.swarm.leave(params.boolean(request.query, "force"))
        return web.Response(status=200)

    async def inspect(self, _request: web.Request) -> web.Response:
        manager = self.swarm.require_manager()
        cluster = manager.view.cluster()
        if cluster is None:
            raise Unavailable("the cluster record is not loaded yet; retry")
        tokens = await manager.nodes.tokens()
        secrets, secrets_version = await manager.nodes.secrets()
        body = SwarmInspect(
            ID=cluster.cluster_id,
            Version=ObjectVersion(Index=secrets_version),
            CreatedAt=cluster.created_at,
            UpdatedAt=cluster.created_at,
            Spec=SwarmSpec.running(
                secrets.autolock,
                cluster.task_history,
                cluster.node_cert_expiry_s,
                cluster.ca_force_rotate,
            ),
            DefaultAddrPool=[cluster.default_pool],
            SubnetSize=cluster.subnet_size,
            DataPathPort=cluster.data_path_port,
            JoinTokens=JoinTokens(Worker=str(tokens["worker"]), Manager=str(tokens["manager"])),
            RootRotationInProgress=cluster.root_rotation is not None,
            TLSInfo=tls_info(cluster.ca_cert_pem),
        )
        return json_model(body)

    async def update(self, request: web.Request) -> web.Response:
        """Docker's ``swarm update``: the whole spec, of which Ferry changes autolock and the
        task history limit (refusing every other change by name); token and unlock key
        rotations are query flags."""
        version = params.object_version(request.query, "swarm")
        rotate = [
            role
            for role, name in (("worker", "rotateWorkerToken"), ("manager", "rotateManagerToken"))
            if params.boolean(request.query, name)
        ]
        rotate_key = params.boolean(request.query, "rotateManagerUnlockKey")
        spec = await read_model(request, SwarmSpec)
        _refuse_unsupported(spec)
        task_history = spec.task_history()
        cert_expiry_s = spec.cert_expiry_s()
        manager = self.swarm.require_manager()
        current = (await manager.nodes.secrets())[1]
        if version != current:
            raise Conflict(
                f"update out of sequence: the swarm changed (version {current}, not {version}); "
                "inspect it again and retry"
            )
        cluster = manager.view.cluster()
        rotation = spec.root_rotation(cluster.ca_force_rotate if cluster else 0)
        if rotation is not None:  # first: it expects the version the client read
            force_rotate, cert_pem, key_pem = rotation
            given = ca.KeyPair(cert_pem, key_pem) if cert_pem else None
            await manager.root_rotations.start(
                force_rotate, given, swarm_version=version, node_cert_expiry_s=cert_expiry_s
            )
        for role in rotate:
            await manager.nodes.rotate(role)
        await manager.keys.set_autolock(spec.EncryptionConfig.AutoLockManagers)
        await set_settings(manager.store, manager.view, manager.feed, task_history=task_history,
                           node_cert_expiry_s=cert_expiry_s)  # fmt: skip
        if rotate_key:
            await manager.keys.rotate()
        return web.Response(status=200)

    async def unlock_key(self, _request: web.Request) -> web.Response:
        """The key to unlock a manager with: only an autolocked swarm has one (Docker)."""
        manager = self.swarm.require_manager()
        secrets, _ = await manager.nodes.secrets()
        key = sealing.format_key(manager.vault.kek()) if secrets.autolock else ""
        return json_model(UnlockKey(UnlockKey=key))

    async def unlock(self, request: web.Request) -> web.Response:
        body = await read_model(request, UnlockKey)
        await self.swarm.unlock(body.UnlockKey)
        return web.Response(status=200)

    async def list_nodes(self, request: web.Request) -> web.Response:
        filters = params.filters(request.query, lf.NODE_FILTERS)
        one_of(filters, "role", lf.NODE_ROLES)
        one_of(filters, "membership", lf.MEMBERSHIPS)
        manager = self.swarm.require_manager()
        states = []
        for state in manager.nodes.all():
            node = state.node  # every node in Ferry's store has been accepted
            rules = lf.node_rules(
                node.node_id, node.hostname, node.role.value, "accepted", node.labels
            )
            if filters_match(filters, rules):
                states.append(state)
        return json_model([node_object(s) for s in states])

    async def inspect_node(self, request: web.Request) -> web.Response:
        manager = self.swarm.require_manager()
        node_ref = request.match_info["node"]
        if node_ref == "self" and self.swarm.membership is not None:
            node_ref = self.swarm.membership.node_id
        node = manager.nodes.find(node_ref)
        return json_model(node_object(manager.nodes.state(node)))

    async def update_node(self, request: web.Request) -> web.Response:
        version = params.object_version(request.query, "node")
        spec = await read_model(request, NodeSpec)
        check_labels(spec.Labels)
        manager = self.swarm.require_manager()
        node = manager.nodes.find(request.match_info["node"])
        await manager.nodes.update(
            node.node_id,
            version,
            availability=spec.Availability,
            role=spec.Role,
            labels=spec.Labels,
        )
        return web.Response(status=200)

    async def remove_node(self, request: web.Request) -> web.Response:
        force = params.boolean(request.query, "force")
        manager = self.swarm.require_manager()
        gone = manager.nodes.find(request.match_info["node"])
        await manager.nodes.remove(gone.node_id, force)
        return web.Response(status=200)


def _refuse_unsupported(spec: SwarmSpec) -> None:
    asked = spec.unsupported()
    if asked:
        raise InvalidArgument(
            f"swarm setting(s) {', '.join(asked)} not supported: Ferry runs the settings "
            "'ferry swarm inspect' shows; of the spec it changes autolock, the task history "
            "limit and the node certificates' expiry only"
        )


def tls_info(ca_cert_pem: str) -> TLSInfo:
    subject, public_key = ca.issuer_der(ca_cert_pem.encode())
    return TLSInfo(
        TrustRoot=ca_cert_pem,
        CertIssuerSubject=base64.b64encode(subject).decode(),
        CertIssuerPublicKey=base64.b64encode(public_key).decode(),
    )
