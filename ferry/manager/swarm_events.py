"""Docker's swarm events (``docker events``, scope ``swarm``) from the store, on every manager.

Design notes. Docker's managers log cluster events from swarmkit's watch of its store (moby
``daemon/events.go``: ``logServiceEvent``, ``logNodeEvent``), so every manager shows every
change, whoever made it: an API call on another manager, the orchestrator, a node going down.
Ferry does the same from the manager's mirror of the store: each batch of changed keys is
compared with the objects last seen, and ``plan_service``/``plan_node`` (pure) say which event
that is, with Docker's attributes: ``name`` always; for an update of a service ``image.old`` and
``image.new``, ``replicas.old`` and ``replicas.new`` when they changed; of a node
``availability``, ``role`` and ``state`` (ready, unknown or down: ``node_status``) old and new;
secrets and configs are created, updated (their labels) and removed, with their ``name``.

The first snapshot is the baseline (objects that were there before the manager started are not
announced, as Docker does not); a snapshot after a break of the store's watch announces what
changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ferry.manager.orchestrator import progress, update_state
from ferry.manager.scheduler import Candidate, candidates
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.node import Node
from ferry.model.service import Mode, Service, Task
from ferry.model.swarm_objects import SwarmObject

# a node's state is its session's, and during a new leader's grace Unknown rather than Down
_WATCHED = (
    keys.SERVICES, keys.TASKS, keys.NODES, keys.SESSIONS, keys.LEADER, keys.SWARM_SECRETS,
    keys.CONFIGS,
)  # fmt: skip
# secrets and configs: their key prefix, and the event type
_OBJECTS = ((keys.SWARM_SECRETS, "secret"), (keys.CONFIGS, "config"))
Publish = Callable[[str, str, str, Mapping[str, str], str], object]


@dataclass(frozen=True)
class SwarmEvent:
    type: str  # "service" or "node"
    action: str  # "create", "update" or "remove"
    actor_id: str
    attributes: Mapping[str, str]


def _changed(attrs: dict[str, str], name: str, old: str, new: str) -> None:
    if old != new:
        attrs[f"{name}.old"] = old
        attrs[f"{name}.new"] = new


def _replicas(svc: Service) -> str:
    return str(svc.spec.replicas) if svc.spec.mode == Mode.REPLICATED else ""


def plan_service(
    svc_id: str,
    old: Service | None,
    new: Service | None,
    old_state: str = "",
    new_state: str = "",
) -> SwarmEvent | None:
    """The event of a service going from ``old`` to ``new`` (None: absent), its update state
    (``orchestrator.update_state``, "" for none) from ``old_state`` to ``new_state``: a change
    of either is an update (swarmkit changes the service object for both)."""
    if old == new and old_state == new_state:  # both absent too
        return None
    if new is None:
        assert old is not None
        return SwarmEvent("service", "remove", svc_id, {"name": old.spec.name})
    attrs = {"name": new.spec.name}
    if old is None:
        return SwarmEvent("service", "create", svc_id, attrs)
    _changed(attrs, "image", old.spec.template.image, new.spec.template.image)
    if _replicas(old) and _replicas(new):
        _changed(attrs, "replicas", _replicas(old), _replicas(new))
    if new_state and not old_state:
        attrs["updatestate.new"] = new_state
    elif new_state:
        _changed(attrs, "updatestate", old_state, new_state)
    return SwarmEvent("service", "update", svc_id, attrs)


def plan_object(
    type_: str, obj_id: str, old: SwarmObject | None, new: SwarmObject | None
) -> SwarmEvent | None:
    """The event of a secret or config (``type_``) going from ``old`` to ``new``."""
    if old == new:
        return None
    if new is None:
        assert old is not None
        return SwarmEvent(type_, "remove", obj_id, {"name": old.name})
    return SwarmEvent(type_, "create" if old is None else "update", obj_id, {"name": new.name})


@dataclass(frozen=True)
class NodeSeen:
    """What a node's events compare: its record and its state (``NodeStatus``'s value)."""

    node: Node
    state: str


def plan_node(node_id: str, old: NodeSeen | None, new: NodeSeen | None) -> SwarmEvent | None:
    """The event of a node going from ``old`` to ``new`` (None: not in the swarm)."""
    if old == new:  # both absent too
        return None
    if new is None:
        assert old is not None
        return SwarmEvent("node", "remove", node_id, {"name": old.node.hostname})
    attrs = {"name": new.node.hostname}
    if old is None:
        return SwarmEvent("node", "create", node_id, attrs)
    _changed(attrs, "availability", old.node.availability.value, new.node.availability.value)
    _changed(attrs, "role", old.node.role.value, new.node.role.value)
    _changed(attrs, "state", old.state, new.state)
    return SwarmEvent("node", "update", node_id, attrs)


def _update_state(svc: Service, tasks: list[Task], nodes: list[Candidate]) -> str:
    state = update_state(svc, progress(svc, tasks, nodes).updating)
    return state[0] if state is not None else ""


class SwarmEvents:
    """Publishes a manager's swarm events; ``changed`` is the mirror's listener."""

    def __init__(self, view: ClusterView, publish: Publish) -> None:
        self._view = view
        self._publish = publish
        self._services: dict[str, Service] = {}
        self._states: dict[str, str] = {}  # a service's update state, "" for none
        self._nodes: dict[str, NodeSeen] = {}
        self._objects: dict[str, SwarmObject] = {}  # by key
        self._baseline = False

    def _node_seen(self, node_id: str) -> NodeSeen | None:
        node = self._view.node(node_id)
        if node is None:  # removed; one that left is Down until then
            return None
        return NodeSeen(node, self._view.status(node_id).value)

    def changed(self, changed: frozenset[str]) -> None:
        if self._baseline and not any(k.startswith(_WATCHED) for k in changed):
            return  # an endpoint, a log request: nothing this publishes
        services = {s.svc_id: s for s in self._view.services()}
        nodes_now = candidates(self._view.nodes(), self._view.status)
        tasks: dict[str, list[Task]] = {}
        for task in self._view.tasks():  # once, not once per service
            tasks.setdefault(task.svc_id, []).append(task)
        states = {i: _update_state(svc, tasks.get(i, []), nodes_now) for i, svc in services.items()}
        nodes = {}
        for node in self._view.nodes():
            if (seen := self._node_seen(node.node_id)) is not None:
                nodes[node.node_id] = seen
        objects = {
            entry.key: entry.obj
            for prefix, _type in _OBJECTS
            for entry in self._view.mirror.entries(prefix)
            if isinstance(entry.obj, SwarmObject)
        }
        if self._baseline:
            events = self._plan(changed, services, states, nodes)
            events += self._plan_objects(changed, objects)
            for event in events:
                self._publish(event.type, event.action, event.actor_id, event.attributes, "swarm")
        self._baseline = self._view.mirror.synced
        self._services, self._states = services, states
        self._nodes, self._objects = nodes, objects

    def _plan_objects(
        self, changed: frozenset[str], objects: dict[str, SwarmObject]
    ) -> list[SwarmEvent]:
        planned = []
        for key in sorted(changed & (self._objects.keys() | objects.keys())):
            type_ = next(t for prefix, t in _OBJECTS if key.startswith(prefix))
            obj_id = key.rsplit("/", 1)[-1]
            planned.append(plan_object(type_, obj_id, self._objects.get(key), objects.get(key)))
        return [event for event in planned if event is not None]

    def _plan(
        self,
        changed: frozenset[str],
        services: dict[str, Service],
        states: dict[str, str],
        nodes: dict[str, NodeSeen],
    ) -> list[SwarmEvent]:
        was, were = self._services, self._states
        planned = [
            plan_service(i, was.get(i), services.get(i), were.get(i, ""), states.get(i, ""))
            for i in sorted(was.keys() | services.keys())
        ]
        leader = keys.LEADER in changed
        planned += [
            plan_node(i, self._nodes.get(i), nodes.get(i))
            for i in sorted(self._nodes.keys() | nodes.keys())
            if leader or keys.node(i) in changed or keys.session(i) in changed
        ]
        return [event for event in planned if event is not None]
