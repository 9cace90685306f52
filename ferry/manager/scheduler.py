"""Where a task runs: the scheduler, as pure functions over plain data.

Rules (Docker's spread strategy): a node qualifies if it is up, its availability is active
(paused and drained nodes take no new tasks), it satisfies every placement constraint, and
what the task reserves (``--reserve-cpu``, ``--reserve-memory``) fits in
what the node has left after the reservations of its live tasks. Among those, the node
running the fewest tasks of the service wins, then the one with the fewest tasks overall,
then the lowest id (so plans are deterministic and testable).

A node need not have the task's image: it pulls it when the task is assigned (as a Swarm
worker does); a pull that fails fails the task, which the restart policy's delay retries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ferry.errors import InvalidArgument
from ferry.model.node import Availability, Node, NodeStatus
from ferry.model.rules import quoted
from ferry.model.service import ContainerTemplate

# swarmkit's constraint grammar (manager/constraint): KEY OP VALUE, OP the first of == and !=
# found; the key alphanumeric, the value free of operators. Ferry knows these keys (swarmkit's
# others, node.ip, node.platform.* and engine.labels.*, describe nothing Ferry records).
_KEY = re.compile(r"^[a-z_][a-z0-9\-_.]+$", re.IGNORECASE)
_VALUE = re.compile(r"^[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+$", re.IGNORECASE)
_FIELDS = ("node.id", "node.hostname", "node.role")
OPERATORS = ("==", "!=")


@dataclass(frozen=True)
class Constraint:
    field: str  # id, hostname, role, or labels.KEY
    equal: bool
    value: str

    def matches(self, node: Node) -> bool:
        """Values compare case-insensitively, as swarmkit's do (label keys are exact)."""
        if self.field == "id":
            actual = node.node_id
        elif self.field == "hostname":
            actual = node.hostname
        elif self.field == "role":
            actual = node.role.value
        else:
            actual = node.labels.get(self.field.removeprefix("labels."), "")
        return (actual.lower() == self.value.lower()) == self.equal


def parse_constraint(text: str, *, strict: bool = True) -> Constraint:
    """One placement constraint, refused in swarmkit's words when it does not parse.
    ``strict=False`` (the scheduler, reading stored specs) skips the character rules, so a
    service stored before they applied is still placed."""
    op = next((o for o in OPERATORS if o in text), None)
    if op is None:
        raise InvalidArgument(
            f"invalid constraint {text!r}: constraint expected one operator from ==, !="
        )
    key, _, value = (part.strip() for part in text.partition(op))
    if strict and not _KEY.match(key):
        raise InvalidArgument(f"invalid constraint {text!r}: key '{quoted(key)[1:-1]}' is invalid")
    if strict and not _VALUE.match(value):
        raise InvalidArgument(
            f"invalid constraint {text!r}: value '{quoted(value)[1:-1]}' is invalid"
        )
    lowered = key.lower()
    if lowered.startswith("node.labels.") and len(key) > len("node.labels."):
        field = "labels." + key[len("node.labels.") :]
    elif lowered in _FIELDS:
        field = lowered.removeprefix("node.")
    else:
        raise InvalidArgument(
            f"invalid constraint {text!r}: unknown key '{quoted(key)[1:-1]}': use node.id, "
            "node.hostname, "
            "node.role or node.labels.KEY"
        )
    if field == "role" and value.lower() not in ("manager", "worker"):
        raise InvalidArgument(f"invalid constraint {text!r}: a role is manager or worker")
    return Constraint(field, op == "==", value)


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
    """Live tasks per node: of the service being placed, and overall; and what they reserve
    (nano CPUs, bytes of memory)."""

    of_service: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, int] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)

    def add(self, node_id: str, same_service: bool, reserves: Reserve = (0, 0)) -> None:
        self.total[node_id] = self.total.get(node_id, 0) + 1
        if same_service:
            self.of_service[node_id] = self.of_service.get(node_id, 0) + 1
        self.cpu[node_id] = self.cpu.get(node_id, 0) + reserves[0]
        self.memory[node_id] = self.memory.get(node_id, 0) + reserves[1]

    def drop(self, node_id: str, same_service: bool, reserves: Reserve = (0, 0)) -> None:
        """A live task stopped in the same pass: its node counts it no more (a rolling
        update's replacement then goes where the old one was, keeping the spread)."""
        self.total[node_id] = max(self.total.get(node_id, 0) - 1, 0)
        if same_service:
            self.of_service[node_id] = max(self.of_service.get(node_id, 0) - 1, 0)
        self.cpu[node_id] = max(self.cpu.get(node_id, 0) - reserves[0], 0)
        self.memory[node_id] = max(self.memory.get(node_id, 0) - reserves[1], 0)

    def fits(self, node: Node, reserves: Reserve) -> bool:
        """Whether ``reserves`` fits in what ``node`` has left (Docker: NanoCPUs and
        MemoryBytes of the node's description)."""
        cpu, memory = reserves
        if cpu and self.cpu.get(node.node_id, 0) + cpu > node.ncpu * 1_000_000_000:
            return False
        return not memory or self.memory.get(node.node_id, 0) + memory <= node.memory_bytes


Reserve = tuple[int, int]  # (nano CPUs, memory bytes) a task reserves


def eligible(
    candidates: Iterable[Candidate],
    constraints: Iterable[Constraint],
    load: Load | None = None,
    reserves: Reserve = (0, 0),
) -> tuple[list[Node], str]:
    """Nodes that may take a new task, and if none, the reason (as Docker words it)."""
    rules = list(constraints)
    ready = [c.node for c in candidates if c.up and not c.node.left]
    active = [n for n in ready if n.availability == Availability.ACTIVE]
    placed = [n for n in active if all(r.matches(n) for r in rules)]
    roomy = [n for n in placed if load is None or load.fits(n, reserves)]
    if roomy:
        return roomy, ""
    if not ready:
        return [], "no suitable node (no node is ready)"
    if not active:
        return [], f"no suitable node ({len(ready)} nodes not available for new tasks)"
    if not placed:
        return [], f"no suitable node (scheduling constraints not satisfied on {len(active)} nodes)"
    return [], f"no suitable node (insufficient resources on {len(placed)} nodes)"


def choose(nodes: list[Node], load: Load) -> Node:
    return min(
        nodes,
        key=lambda n: (load.of_service.get(n.node_id, 0), load.total.get(n.node_id, 0), n.node_id),
    )


def reserves(template: ContainerTemplate) -> Reserve:
    """What a task of ``template`` reserves on its node: (nano CPUs, memory bytes)."""
    return template.options.reserve_nano_cpus, template.options.reserve_memory_bytes
