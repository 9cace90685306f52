"""Node operations a manager serves: list with status, update, remove, leave; join tokens."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from ferry.daemon.logs import kv
from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.manager.ca import ca_der
from ferry.manager.feed import StoreFeed
from ferry.manager.networks import release_ops
from ferry.manager.store import Delete, Expect, Put, Store, keys
from ferry.manager.store.view import ClusterView
from ferry.manager.tokens import JoinToken, make_token, new_secret
from ferry.model.cluster import ClusterSecrets
from ferry.model.codec import decode, encode
from ferry.model.ids import lookup
from ferry.model.network import EndpointKind
from ferry.model.node import Availability, Node, NodeStatus, Role
from ferry.model.node_roles import check_demotion, parse_role, with_role
from ferry.model.times import now_iso

log = logging.getLogger("ferry.manager.nodes")

_NODE_OWNED = (EndpointKind.CONTAINER, EndpointKind.SANDBOX)


@dataclass(frozen=True)
class NodeState:
    node: Node
    version: int
    status: NodeStatus
    leader: bool

    @property
    def up(self) -> bool:
        return self.status == NodeStatus.READY


class NodeOps:
    def __init__(self, store: Store, view: ClusterView, feed: StoreFeed) -> None:
        self._store = store
        self._view = view
        self._feed = feed

    async def wait_for(self, revision: int) -> None:
        await self._feed.wait_for(revision)

    # lookups ---------------------------------------------------------------------------------
    def find(self, query: str) -> Node:
        node = lookup(self._view.nodes(), query, lambda n: (n.node_id, n.hostname), "node")
        if node is None:
            raise NotFound(f"node {query} not found")
        return node

    def state(self, node: Node) -> NodeState:
        return NodeState(
            node,
            self._view.entity_version(keys.node(node.node_id)),
            self._view.status(node.node_id),
            self._view.leader_id() == node.node_id,
        )

    def all(self) -> list[NodeState]:
        nodes = sorted(self._view.nodes(), key=lambda n: (n.hostname, n.node_id))
        return [self.state(n) for n in nodes]

    # changes ---------------------------------------------------------------------------------
    async def update(
        self,
        query: str,
        version: int | None,
        *,
        availability: str | None = None,
        role: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        node = self.find(query)
        current = self._view.entity_version(keys.node(node.node_id))
        if version is not None and version != current:
            raise Conflict(
                f"update out of sequence: node {node.hostname} changed (version {current}, "
                f"not {version}); inspect it again and retry"
            )
        changes: dict[str, object] = {"updated_at": now_iso()}
        if availability is not None:
            try:  # Docker takes any case, and refuses an empty one (the spec is whole)
                changes["availability"] = Availability(availability.lower())
            except ValueError as exc:
                raise InvalidArgument(
                    f'invalid Availability: "{availability}" (use active, pause or drain)'
                ) from exc
        if labels is not None:
            changes["labels"] = dict(labels)
        updated = replace(node, **changes)  # type: ignore[arg-type]
        demoted = False
        if role is not None:
            taken = with_role(updated, parse_role(role), now_iso())
            if taken is not None:
                demoted = node.role == Role.MANAGER and taken.role == Role.WORKER
                if demoted:
                    check_demotion(self._view.managers(), node, self._view.is_up)
                updated = taken
        revision = await self._store.commit(
            [Put(keys.node(node.node_id), encode(updated))],
            [Expect(keys.node(node.node_id), current)],
        )
        if revision is None:
            raise Conflict(f"node {node.hostname} changed meanwhile; retry")
        await self._feed.wait_for(revision)
        if demoted:  # its store member goes next (store_members.py), as swarmkit's does
            log.info("manager demoted", extra=kv(node=node.node_id, hostname=node.hostname))

    async def forget_managers(self, keep: str) -> None:
        """Every manager but ``keep`` is recorded as a worker (``swarm init
        --force-new-cluster``: their store members are gone)."""
        ops = [
            Put(keys.node(n.node_id), encode(replace(n, role=Role.WORKER, desired_role=None,
                                                    updated_at=now_iso())))
            for n in self._view.managers()
            if n.node_id != keep and not n.left
        ]  # fmt: skip
        if ops:
            revision = await self._store.commit(ops)
            if revision is not None:
                await self._feed.wait_for(revision)

    async def forget_sessions(self, keep: str) -> None:
        """Every node's session but ``keep``'s ends (``swarm init --force-new-cluster``): the
        sessions were the old cluster's, and etcd keeps their leases alive across its restart,
        so dead nodes would show Ready until they lapse. A node that is up opens a new one at
        its next heartbeat (2 s); the new leader's grace period keeps the others Unknown, not
        Down, meanwhile (nothing is rescheduled at once)."""
        for node in self._view.nodes():
            session = self._view.session(node.node_id)
            if node.node_id == keep or session is None:
                continue
            revision = await self._store.commit([Delete(keys.session(node.node_id))])
            await self._store.revoke_lease(session.lease_id)
            if revision is not None:
                await self._feed.wait_for(revision)

    async def complete_promotion(self, node_id: str) -> None:
        """A promoted node's store member votes now: the record says manager (``node ls``
        shows its manager status from here on)."""
        node = self._view.node(node_id)
        if node is None or node.desired_role != Role.MANAGER:
            return
        version = self._view.entity_version(keys.node(node_id))
        promoted = replace(node, role=Role.MANAGER, desired_role=None, updated_at=now_iso())
        revision = await self._store.commit(
            [Put(keys.node(node_id), encode(promoted))], [Expect(keys.node(node_id), version)]
        )
        if revision is None:
            raise Conflict(f"node {node.hostname} changed meanwhile; retry")
        await self._feed.wait_for(revision)
        log.info("manager promoted", extra=kv(node=node_id, hostname=node.hostname))

    async def remove(self, query: str, force: bool) -> None:
        node = self.find(query)
        if node.role == Role.MANAGER and not node.left:
            raise InvalidArgument(  # swarmkit's words (a FailedPrecondition: 400)
                f"rpc error: code = FailedPrecondition desc = node {node.node_id} is a cluster "
                "manager and is a member of the raft cluster. It must be demoted to worker "
                "before removal"
            )
        if not self._view.is_down(node.node_id) and not force:
            raise Conflict(
                f"node {node.hostname} is not down and can't be removed: stop it or leave the "
                "swarm on it first, or use --force"
            )
        session = self._view.session(node.node_id)
        ops: list[Put | Delete] = [
            Delete(keys.node(node.node_id)),
            Delete(keys.session(node.node_id)),
        ]
        # Its standalone containers and its ingress sandbox are gone with it: their addresses
        # and names go too. Tasks' endpoints are the leader's, freed when it forgets the tasks.
        for endpoint in self._view.endpoints():
            if endpoint.node_id == node.node_id and endpoint.kind in _NODE_OWNED:
                ops += release_ops(endpoint)
        revision = await self._store.commit(ops)
        if session is not None:
            await self._store.revoke_lease(session.lease_id)
        if revision is not None:
            await self._feed.wait_for(revision)

    async def mark_left(self, node_id: str) -> None:
        """A node said goodbye: keep it listed as down, as Docker does, until ``node rm``."""
        node = self._view.node(node_id)
        if node is None:
            return
        session = self._view.session(node_id)
        ops: list[Put | Delete] = [
            Put(keys.node(node_id), encode(replace(node, left=True, updated_at=now_iso()))),
            Delete(keys.session(node_id)),
        ]
        revision = await self._store.commit(ops)
        if session is not None:
            await self._store.revoke_lease(session.lease_id)
        if revision is not None:
            await self._feed.wait_for(revision)

    # join tokens -----------------------------------------------------------------------------
    async def secrets(self) -> tuple[ClusterSecrets, int]:
        kv = await self._store.get(keys.SECRETS)
        if kv is None:
            raise NotFound("cluster secrets are missing from the store")
        return decode(ClusterSecrets, kv.value), kv.mod_revision

    async def tokens(self) -> dict[str, JoinToken]:
        cluster = self._view.cluster()
        if cluster is None:
            raise NotFound("cluster record is missing from the store")
        secrets, _ = await self.secrets()
        der = ca_der(cluster.ca_cert_pem.encode())
        return {
            "worker": make_token(der, secrets.worker_secret),
            "manager": make_token(der, secrets.manager_secret),
        }

    async def rotate(self, role: str) -> None:
        secrets, version = await self.secrets()
        if role == "worker":
            rotated = replace(secrets, worker_secret=new_secret())
        elif role == "manager":
            rotated = replace(secrets, manager_secret=new_secret())
        else:
            raise InvalidArgument(f"unknown role {role!r}: use worker or manager")
        revision = await self._store.commit(
            [Put(keys.SECRETS, encode(rotated))], [Expect(keys.SECRETS, version)]
        )
        if revision is None:
            raise Conflict("join tokens changed meanwhile; retry")
