"""Changing a node's role (``node promote``, ``node demote``, ``node update --role``): the
rules, as plain data.

Swarm's way, which Ferry follows: a promotion only records the wanted role (``Spec.Role``);
the node takes it itself — it asks for a manager certificate, its store member joins as a
learner and becomes a voter once caught up — and only then is it a manager (``node ls`` shows
its manager status). A demotion is checked and done at once: the record says worker and the
node's store member is removed; the node then gives up its manager parts and keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ferry.errors import Conflict, InvalidArgument
from ferry.model.node import Node, Role

# swarmkit's controlapi (UpdateNode), which the docker CLI prints as the daemon's answer
DEMOTE_LAST = (
    "rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"
)
DEMOTE_QUORUM = (
    "rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would "
    "result in a loss of quorum"
)


def parse_role(raw: str) -> Role:
    """``Spec.Role`` of a node update: Docker refuses any but worker and manager (an empty one
    too: the spec is whole, as ``node inspect`` gives it)."""
    try:
        return Role(raw.lower())
    except ValueError as exc:
        raise InvalidArgument(f'invalid Role: "{raw}" (use worker or manager)') from exc


def with_role(node: Node, wanted: Role, updated_at: str) -> Node | None:
    """The record after asking ``node`` for role ``wanted``; None when nothing changes.

    A worker asked to be a manager records the wish (its promotion is its own to do); a worker
    whose promotion is pending and is asked to stay a worker drops the wish; a manager asked to
    be a worker is one at once (``demotion`` checks first). Raises Conflict for a node that left.
    """
    if wanted == node.wanted_role:
        return None
    if node.left:
        raise Conflict(f"node {node.hostname} has left the swarm: its role cannot change")
    if wanted == Role.MANAGER:
        return replace(node, desired_role=Role.MANAGER, updated_at=updated_at)
    return replace(node, role=Role.WORKER, desired_role=None, updated_at=updated_at)


def check_demotion(managers: list[Node], node: Node, is_up: Callable[[str], bool]) -> None:
    """Refuse to demote ``node`` if it is the last manager, or if the managers left would not
    have a majority of them up (swarmkit: raft's CanRemoveMember). ``managers``: every manager
    of the swarm, ``is_up``: whether a node's session is alive. Raises InvalidArgument with
    Docker's words (a FailedPrecondition, which Docker answers with 400)."""
    current = [n for n in managers if n.role == Role.MANAGER and not n.left]
    remaining = [n for n in current if n.node_id != node.node_id]
    if not remaining:
        raise InvalidArgument(DEMOTE_LAST)
    up = sum(1 for n in remaining if is_up(n.node_id))
    if up < len(remaining) // 2 + 1:
        raise InvalidArgument(DEMOTE_QUORUM)
