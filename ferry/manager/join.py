"""Admitting a node: check its token, sign its certificate, and (for a manager) grow etcd.

The token's digest was already checked by the joiner against our CA (that is how it trusts
us); here its secret decides the role. A manager joiner becomes an etcd *learner* before it is
told to start etcd (etcd refuses a member it was not told about): a learner has no vote, so a
joiner that never comes up cannot take the cluster's quorum with it. Once its etcd has caught
up, the joiner asks to be promoted to a voting member (``promote``). The node record is written
before the store grows, while the quorum is certainly there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging

from ferry.daemon.logs import kv
from ferry.errors import Conflict, Forbidden, InvalidArgument, Unavailable
from ferry.manager import ca, sealing
from ferry.manager.etcd_member import FINAL_TLS_PHASE, PEER_PORT
from ferry.manager.nodes import NodeOps
from ferry.manager.store import Delete, Put, Store, keys
from ferry.manager.store.etcd import EtcdMembers
from ferry.manager.store.view import ClusterView
from ferry.manager.tokens import JoinToken, parse_token
from ferry.manager.vault import Vault
from ferry.manager.wire import JoinRequest, JoinResponse, RoleRequest
from ferry.model.cluster import ClusterSecrets
from ferry.model.codec import encode
from ferry.model.ids import new_object_id
from ferry.model.node import Availability, Node, Role
from ferry.model.root_rotation import wanted_trust
from ferry.model.times import now_iso

log = logging.getLogger("ferry.manager.join")

MEMBER_ADD_TIMEOUT_S = 20.0


class JoinService:
    def __init__(
        self,
        store: Store,
        members: EtcdMembers | None,
        view: ClusterView,
        nodes: NodeOps,
        vault: Vault,
    ) -> None:
        self._store = store
        self._members = members
        self._view = view
        self._nodes = nodes
        self._vault = vault
        self._lock = asyncio.Lock()

    def ca_document(self) -> dict[str, str] | None:
        """What ``GET /v1/ca`` tells a joining node (None before the cluster record is read):
        the root its token names; during a root rotation also the new root, and the new root
        certified by the old one (``root_ca.vouched``), so that the node may trust both."""
        cluster = self._view.cluster()
        if cluster is None:
            return None
        rotation = cluster.root_rotation
        if rotation is None:
            return {"ca_pem": cluster.ca_cert_pem}
        return {
            "ca_pem": cluster.ca_cert_pem,
            "new_ca_pem": rotation.ca_cert_pem,
            "cross_signed_pem": rotation.cross_signed_pem,
        }

    async def join(self, req: JoinRequest, peer_ip: str) -> JoinResponse:
        cluster = self._view.cluster()
        if cluster is None:
            raise Unavailable("this manager has no cluster record yet; retry")
        token = parse_token(req.token)
        if not token.matches_ca(ca.ca_der(cluster.ca_cert_pem.encode())):
            raise Forbidden("invalid join token: it belongs to another swarm")
        check_data_path_port_of(req, cluster.data_path_port)
        secrets, _ = await self._nodes.secrets()
        role = _role_of(token, secrets)
        addr = req.advertise_addr or peer_ip
        try:
            ipaddress.IPv4Address(addr)
        except ValueError as exc:
            raise InvalidArgument(f"invalid advertise address {addr!r}") from exc
        try:
            availability = Availability(req.availability or "active")
        except ValueError as exc:
            raise InvalidArgument(f"invalid availability {req.availability!r}") from exc
        ca_pair = self._vault.signing_pair(cluster, secrets)  # a locked manager admits nobody
        if role == Role.MANAGER:
            self._check_manager_join(req.store_csr_pem)
        async with self._lock:  # one admission at a time: etcd grows one member at a time
            for other in self._view.nodes():
                if other.addr == addr and self._view.is_up(other.node_id):
                    raise Conflict(f"node {other.hostname} at {addr} is already part of this swarm")
            node_id = new_object_id()
            identity = ca.Identity(node_id, role.value, cluster.cluster_id)
            ips = [addr, "127.0.0.1"]
            response = JoinResponse(
                node_id=node_id,
                cluster_id=cluster.cluster_id,
                role=role.value,
                addr=addr,
                cert_pem=ca.sign_node(
                    ca_pair,
                    req.csr_pem.encode(),
                    identity,
                    ips,
                    validity=dt.timedelta(seconds=cluster.node_cert_expiry_s),
                ).decode(),
                ca_pem=wanted_trust(cluster.ca_cert_pem, cluster.root_rotation),
                managers=sorted(
                    {*self._view.manager_addrs(), *([addr] if role == Role.MANAGER else [])}
                ),
                data_path_port=cluster.data_path_port,
            )
            if role == Role.MANAGER:
                response = self._with_store_access(
                    response, req.store_csr_pem, secrets, cluster.cluster_id
                )
            node = _node_of(req, node_id, role, addr, availability)
            ops = [Put(keys.node(node_id), encode(node))]
            if role == Role.MANAGER:
                ops.append(Put(keys.store_tls(node_id), encode(FINAL_TLS_PHASE)))
            revision = await self._store.commit(ops)
            if revision is not None:
                await self._nodes.wait_for(revision)  # its first heartbeat must find it
            if role == Role.MANAGER:
                try:
                    initial_cluster = await self._add_member(node_id, addr)
                except BaseException:
                    await self._store.commit(
                        [Delete(keys.node(node_id)), Delete(keys.store_tls(node_id))]
                    )
                    raise
                response = response.model_copy(update={"etcd_initial_cluster": initial_cluster})
        log.info("node joined", extra=kv(node=node_id, hostname=req.hostname, role=role, addr=addr))
        return response

    async def take_role(self, node_id: str, req: RoleRequest) -> JoinResponse:
        """Certificates for node ``node_id`` taking the role its record asks for: a promoted
        worker gets a manager's (node certificate, store certificate, the KEK) and its store
        member is added as a learner; a demoted manager gets a worker's node certificate.
        Raises Forbidden when the record asks for another role (a stale or forged request)."""
        cluster = self._view.cluster()
        node = self._view.node(node_id)
        if cluster is None or node is None or node.left:
            raise Forbidden(f"node {node_id} is not a member of this swarm")
        role = Role(req.role) if req.role in ("manager", "worker") else None
        if role is None or node.wanted_role != role:
            raise Forbidden(f"node {node.hostname} is not to be a {req.role}")
        secrets, _ = await self._nodes.secrets()
        ca_pair = self._vault.signing_pair(cluster, secrets)
        response = JoinResponse(
            node_id=node_id,
            cluster_id=cluster.cluster_id,
            role=role.value,
            addr=node.addr,
            cert_pem=ca.sign_node(
                ca_pair,
                req.csr_pem.encode(),
                ca.Identity(node_id, role.value, cluster.cluster_id),
                [node.addr, "127.0.0.1"],
                validity=dt.timedelta(seconds=cluster.node_cert_expiry_s),
            ).decode(),
            ca_pem=wanted_trust(cluster.ca_cert_pem, cluster.root_rotation),
            managers=sorted(
                {*self._view.manager_addrs(), *([node.addr] if role == Role.MANAGER else [])}
            ),
            data_path_port=cluster.data_path_port,
        )
        if role == Role.WORKER:
            return response
        self._check_manager_join(req.store_csr_pem)
        response = self._with_store_access(response, req.store_csr_pem, secrets, cluster.cluster_id)
        async with self._lock:
            await self._drop_stale_learner(node.addr)
            initial_cluster = await self._add_member(node_id, node.addr)
        log.info("promotion started", extra=kv(node=node_id, hostname=node.hostname))
        return response.model_copy(update={"etcd_initial_cluster": initial_cluster})

    async def renew_certificate(self, identity: ca.Identity, csr_pem: str) -> str:
        """A new certificate for the node and role of ``identity`` (its current certificate),
        valid for the swarm's node certificate expiry from now. Forbidden for a node that
        left or whose record has another role (its role change brings its certificate)."""
        cluster = self._view.cluster()
        node = self._view.node(identity.node_id)
        if cluster is None or node is None or node.left:
            raise Forbidden(f"node {identity.node_id} is not a member of this swarm")
        if node.role.value != identity.role:
            raise Forbidden(
                f"node {node.hostname} is a {node.role.value} now: its role change gives it "
                "its certificate"
            )
        secrets, _ = await self._nodes.secrets()
        ca_pair = self._vault.signing_pair(cluster, secrets)
        return ca.sign_node(
            ca_pair,
            csr_pem.encode(),
            identity,
            [node.addr, "127.0.0.1"],
            validity=dt.timedelta(seconds=cluster.node_cert_expiry_s),
        ).decode()

    async def _drop_stale_learner(self, addr: str) -> None:
        """A learner left at ``addr`` by a promotion that failed half-way: its node starts a
        fresh member, which etcd would refuse under the same peer URL."""
        if self._members is None:
            return
        peer_url = f"https://{addr}:{PEER_PORT}"
        for member_id, urls in await self._members.learners():
            if peer_url in urls:
                await self._members.remove(member_id)

    def _check_manager_join(self, store_csr_pem: str) -> None:
        if not store_csr_pem:
            raise InvalidArgument(
                "a manager joins with a request for its store certificate: upgrade the joining "
                "ferryd to this version"
            )
        behind = sorted(
            n.hostname
            for n in self._view.managers()
            if not n.left and store_tls_phase(self._view, n.node_id) < FINAL_TLS_PHASE
        )
        if behind:
            raise Unavailable(
                f"the store is moving to its own CA (managers {', '.join(behind)} are not "
                "there yet): a manager can join once they have restarted with this version"
            )

    def _with_store_access(
        self, response: JoinResponse, store_csr_pem: str, secrets: ClusterSecrets, cluster_id: str
    ) -> JoinResponse:
        """What a joining manager needs for the store: a store certificate and the KEK (over
        this TLS connection, pinned by the joiner to our CA)."""
        store_cert = ca.sign_store_member(
            self._vault.store_ca_pair(secrets),
            store_csr_pem.encode(),
            response.node_id,
            cluster_id,
            [response.addr, "127.0.0.1"],
        )
        return response.model_copy(
            update={
                "store_ca_pem": secrets.store_ca_cert_pem,
                "store_cert_pem": store_cert.decode(),
                "unlock_key": sealing.format_key(self._vault.kek()),
                "autolock": secrets.autolock,
            }
        )

    async def _add_member(self, node_id: str, addr: str) -> str:
        if self._members is None:
            raise Unavailable("this manager cannot add store members")
        peer_url = f"https://{addr}:{PEER_PORT}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MEMBER_ADD_TIMEOUT_S
        while True:
            try:
                await self._members.add(peer_url)
                break
            except Unavailable as exc:
                # etcd refuses a second member change until the previous one is healthy (~5 s)
                if loop.time() > deadline:
                    raise Unavailable(f"could not add a store member for {addr}: {exc}") from exc
                await asyncio.sleep(0.5)
        parts = []
        for _member_id, name, urls in await self._members.all():
            parts += [f"{name or node_id}={url}" for url in urls]
        return ",".join(sorted(parts))

    async def promote(self, addr: str) -> None:
        """Promote the learner at ``addr`` once it has caught up (etcd refuses before)."""
        if self._members is None:
            return
        peer_url = f"https://{addr}:{PEER_PORT}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MEMBER_ADD_TIMEOUT_S * 3
        while True:
            learner = next(
                (mid for mid, urls in await self._members.learners() if peer_url in urls), None
            )
            if learner is None:
                return  # promoted already (a retried request)
            try:
                await self._members.promote(learner)
                log.info("store member promoted", extra=kv(addr=addr))
                return
            except Unavailable as exc:
                if loop.time() > deadline:
                    raise Unavailable(
                        f"the store member at {addr} did not catch up: {exc}"
                    ) from exc
                await asyncio.sleep(0.5)


def _node_of(
    req: JoinRequest, node_id: str, role: Role, addr: str, availability: Availability
) -> Node:
    return Node(
        node_id=node_id,
        hostname=req.hostname,
        role=role,
        addr=addr,
        availability=availability,
        created_at=now_iso(),
        updated_at=now_iso(),
        engine_version=req.engine_version,
        ncpu=req.ncpu,
        memory_bytes=req.memory_bytes,
    )


def _role_of(token: JoinToken, secrets: ClusterSecrets) -> Role:
    if token.grants(secrets.manager_secret):
        return Role.MANAGER
    if token.grants(secrets.worker_secret):
        return Role.WORKER
    raise Forbidden(
        "invalid join token: it was rotated or never valid; get the current one with "
        "'ferry swarm join-token worker' on a manager"
    )


def recorded_tls_phase(view: ClusterView, node_id: str) -> int | None:
    """The TLS phase a manager recorded for its etcd member (``etcd_member.py``); None from a
    manager that runs an older ferryd."""
    entry = view.mirror.get(keys.store_tls(node_id))
    return int(entry.obj) if entry is not None and entry.obj is not None else None


def store_tls_phase(view: ClusterView, node_id: str) -> int:
    phase = recorded_tls_phase(view, node_id)
    return 0 if phase is None else phase


def check_data_path_port_of(req: JoinRequest, swarm_port: int) -> None:
    """Refuse a joiner whose daemon.json sets a ``data-path-port`` other than the swarm's
    (``swarm_port``): its VXLAN would not reach the others. Not set (0), or the same: fine.
    Raises InvalidArgument naming both ports and the fix."""
    if req.data_path_port and req.data_path_port != swarm_port:
        raise InvalidArgument(
            f"this swarm's data path port is {swarm_port}, but data-path-port in the daemon.json "
            f"of {req.hostname or 'the joining host'} is {req.data_path_port}: set it to "
            f"{swarm_port} or remove it, restart ferryd and join again"
        )
