"""What a node may create on a swarm network: the rules behind ``POST /v1/attachments``.

The caller is the node its certificate names; what it asks for is checked against the store,
never taken on its word. Managers write task and VIP endpoints themselves (the leader's
reconciler, ``service create``), so through this route a node — worker or manager alike — only
gets endpoints of its own:

- **CONTAINER**, for a standalone container: on an ``--attachable`` network (Docker: "network N
  not manually attachable"), never on ``ingress``. Every DNS name it would hold (its name,
  aliases and hostname, each also qualified with the network's name, as the embedded DNS
  answers them) must not be a service's name or ``tasks.<service>`` (service and container names
  share one DNS namespace, as ``service create`` already enforces the other way round), nor a
  name held on that network by a task, a VIP or another node's container. Docker refuses a
  second endpoint of one name on a network (libnetwork: "endpoint with name X already exists in
  network N", 403); a node's own containers may still share an alias, which Docker resolves
  round-robin. Its owner (the container id) must not be another node's.
- **SANDBOX**, for the node's ingress sandbox: on the ingress network only, once per node; the
  managers name it (an older agent's ask that names it just so is taken) and give it no alias,
  hostname or chosen address.
- **TASK** and **VIP**: refused.

Be aware: the checks read the managers' mirror of the store, so two nodes racing for one new
name in the same few milliseconds can both pass; the address itself is still reserved atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ferry.errors import Conflict, Forbidden, InvalidArgument
from ferry.model.network import Endpoint, EndpointKind, Network
from ferry.model.node import Node
from ferry.model.rules import check_no_service_name, dns_keys
from ferry.model.service import Service

NODE_KINDS = (EndpointKind.CONTAINER, EndpointKind.SANDBOX)


@dataclass(frozen=True)
class Ask:
    """What a node asked for (the wire body), with the node id its certificate names; ``admit``
    returns the one the managers agree to create."""

    node_id: str
    owner_id: str
    name: str
    kind: str = EndpointKind.CONTAINER.value
    aliases: tuple[str, ...] = ()
    hostname: str = ""
    ip: str = ""


@dataclass(frozen=True)
class StoreFacts:
    """What the rules read from the store (the managers' mirror)."""

    nodes: dict[str, Node]
    services: list[Service]
    endpoints: list[Endpoint]  # the endpoints of the network asked for


def sandbox_name(node: Node) -> tuple[str, str]:
    """(owner id, name) the managers give a node's ingress sandbox endpoint."""
    return f"ingress-{node.node_id}", f"ingress-sbox-{node.hostname}"


def endpoint_labels(ep: Endpoint) -> tuple[str, ...]:
    """The DNS labels an endpoint holds (a sandbox holds none)."""
    if ep.kind == EndpointKind.SANDBOX:
        return ()
    labels = (ep.name, *ep.aliases, ep.hostname)
    if ep.kind == EndpointKind.TASK and ep.service:
        labels += (f"tasks.{ep.service}", ep.service)
    return labels


def admit(ask: Ask, network: Network, facts: StoreFacts) -> Ask:
    """Decide what ``ask`` may create on ``network``: the endpoint to create (with the fields
    the managers decide filled in). Raises Forbidden (not the caller's to create), Conflict
    (already there) or InvalidArgument (malformed)."""
    try:
        kind = EndpointKind(ask.kind)
    except ValueError as exc:
        raise InvalidArgument(f"unknown endpoint kind {ask.kind!r}: use container") from exc
    node = facts.nodes.get(ask.node_id)
    if node is None or node.left:
        raise Forbidden(
            f"node {ask.node_id} is not a member of this swarm (it left or was removed): "
            "join it again"
        )
    if kind not in NODE_KINDS:
        raise Forbidden(
            f"a node cannot create {kind.value} endpoints: the managers make them for the "
            "services and tasks they schedule"
        )
    if kind == EndpointKind.SANDBOX:
        return _admit_sandbox(ask, node, network, facts)
    return _admit_container(ask, network, facts)


def _admit_sandbox(ask: Ask, node: Node, network: Network, facts: StoreFacts) -> Ask:
    if not network.ingress:
        raise Forbidden(
            f"network {network.name} is not the ingress network: a node's sandbox endpoint "
            "lives on ingress only"
        )
    owner_id, name = sandbox_name(node)
    # an older agent names it as the managers would: the same names are no choice of its own
    given = {"owner_id": (ask.owner_id, owner_id), "name": (ask.name, name)}
    for field, (value, decided) in given.items():
        if value not in ("", decided):
            raise InvalidArgument(
                f"{field} is not taken for the ingress sandbox endpoint: the managers name it"
            )
    for field in ("aliases", "hostname", "ip"):
        if getattr(ask, field):
            raise InvalidArgument(
                f"{field} is not taken for the ingress sandbox endpoint: the managers name it"
            )
    for ep in facts.endpoints:
        if ep.kind == EndpointKind.SANDBOX and ep.node_id == node.node_id:
            raise Conflict(
                f"node {node.hostname} already has its ingress sandbox endpoint ({ep.ep_id[:12]})"
            )
    return replace(ask, owner_id=owner_id, name=name)


def _admit_container(ask: Ask, network: Network, facts: StoreFacts) -> Ask:
    if network.ingress:
        raise Forbidden("the ingress network is for the routing mesh only")
    if not network.attachable:
        raise Forbidden(
            f"network {network.name} is not manually attachable: create it with --attachable "
            "to run standalone containers on it (services can use it as it is)"
        )
    if not ask.owner_id or not ask.name:
        raise InvalidArgument("a container endpoint needs the container's id and name")
    labels = (ask.name, *ask.aliases, ask.hostname)
    check_no_service_name(labels, network.name, facts.services)
    wanted = dns_keys(labels, network.name)
    for ep in facts.endpoints:
        mine = ep.kind == EndpointKind.CONTAINER and ep.node_id == ask.node_id
        if mine:
            continue  # a node's own containers may share an alias (Docker's round robin)
        if ep.kind == EndpointKind.CONTAINER and ep.owner_id == ask.owner_id:
            raise Forbidden(f"container {ask.owner_id[:12]} belongs to another node")
        taken = dns_keys(endpoint_labels(ep), network.name) & wanted
        if taken:
            holder = facts.nodes.get(ep.node_id)
            where = f" on node {holder.hostname}" if holder else ""
            raise Forbidden(
                f"endpoint with name {min(taken)} already exists in network {network.name}: "
                f"{ep.kind.value} {ep.name} holds it{where}"
            )
    return ask
