"""Where a task runs: the scheduler, as pure functions over plain data.

Rules (Docker's spread strategy): a node qualifies if it is up, its availability is active
(paused and drained nodes take no new tasks), it satisfies every placement constraint and it
has the image. Among those, the node running the fewest tasks of the service wins, then the one
with the fewest tasks overall, then the lowest id (so plans are deterministic and testable).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ferry.errors import InvalidArgument
from ferry.model.node import Availability, Node, NodeStatus
from ferry.runtime.images import HOST_IMAGE, normalise

_CONSTRAINT = re.compile(r"^\s*node\.(id|hostname|role|labels\.[\w.-]+)\s*(==|!=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    field: str
    equal: bool
    value: str

    def matches(self, node: Node) -> bool:
        if self.field == "id":
            actual = node.node_id
        elif self.field == "hostname":
            actual = node.hostname
        elif self.field == "role":
            actual = node.role.value
        else:
            actual = node.labels.get(self.field.removeprefix("labels."), "")
        return (actual == self.value) == self.equal


def parse_constraint(text: str) -> Constraint:
    match = _CONSTRAINT.match(text)
    if match is None:
        raise InvalidArgument(
            f"invalid constraint {text!r}: use node.hostname==H, node.role==manager|worker, "
            "node.id==ID or node.labels.KEY==VALUE (or != instead of ==)"
        )
    name, op, value = match.groups()
    if name == "role" and value not in ("manager", "worker"):
        raise InvalidArgument(f"invalid constraint {text!r}: a role is manager or worker")
    return Constraint(name, op == "==", value)


@dataclass(frozen=True)
class Candidate:
    node: Node
    status: NodeStatus

    @property
    def up(self) -> bool:
        """Ready: it may take new tasks."""
        return self.status == NodeStatus.READY

    @property
    def lost(self) -> bool:
        """Down: its tasks are replaced elsewhere (Unknown is neither up nor lost)."""
        return self.status == NodeStatus.DOWN


def candidates(nodes: Iterable[Node], status: Callable[[str], NodeStatus]) -> list[Candidate]:
    return [Candidate(n, status(n.node_id)) for n in nodes]


@dataclass
class Load:
    """Live tasks per node: of the service being placed, and overall."""

    of_service: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def add(self, node_id: str, same_service: bool) -> None:
        self.total[node_id] = self.total.get(node_id, 0) + 1
        if same_service:
            self.of_service[node_id] = self.of_service.get(node_id, 0) + 1


def has_image(node: Node, image: str) -> bool:
    name = normalise(image)
    return name == HOST_IMAGE or name in node.images


def eligible(
    candidates: Iterable[Candidate], constraints: Iterable[Constraint], image: str
) -> tuple[list[Node], str]:
    """Nodes that may take a new task, and if none, the reason (as Docker words it)."""
    rules = list(constraints)
    ready = [c.node for c in candidates if c.up and not c.node.left]
    active = [n for n in ready if n.availability == Availability.ACTIVE]
    placed = [n for n in active if all(r.matches(n) for r in rules)]
    with_image = [n for n in placed if has_image(n, image)]
    if with_image:
        return with_image, ""
    if not ready:
        return [], "no suitable node (no node is ready)"
    if not active:
        return [], f"no suitable node ({len(ready)} nodes not available for new tasks)"
    if not placed:
        return [], f"no suitable node (scheduling constraints not satisfied on {len(active)} nodes)"
    return [], f"no suitable node (image {image} is on no eligible node: import it there)"


def choose(nodes: list[Node], load: Load) -> Node:
    return min(
        nodes,
        key=lambda n: (load.of_service.get(n.node_id, 0), load.total.get(n.node_id, 0), n.node_id),
    )
