"""What a worker's session stream may carry of each store value: a per-node projection.

Design notes. Docker's dispatcher gives a worker its assigned tasks (each with its spec) and
the network facts of its data plane, never the other services' specs. Ferry does the same with
one pure function applied to every streamed value, in the snapshot and in each event:

- **Tasks carry their own spec** (``Task.template``, copied from the service when the task is
  made): a task assigned to the node comes whole, so the container template (command, env,
  mounts, credentials, health, resources) reaches a node *with* the task that needs it, also
  when it is assigned later, in the same event. Once the task has finished (a terminal state is
  final), its template shrinks to what stopping a leftover container reads (image and grace).
  Any other node's task, or one not yet assigned, keeps only what the data plane reads: ids,
  names, slot, node and states (VIP backends and DNS follow ``serving``).
- **Services reach workers as networking facts only**: name, id, networks and its aliases
  there, endpoint mode and published ports (the agent's task start, ingress, host ports, DNS
  and name checks read no more; VIP addresses live on the endpoints). The template and the
  previous spec stay on the managers, also for a service with a task on the node: the task has
  its own copy.
- **Requests to a node** (logs, doctor) go to that node only.
- **Only the streamed kinds** (``keys.STREAMED``) reach a worker at all: the cluster's own
  secrets, swarm secrets and configs, name keys and anything of a kind added later are
  withheld (Share.NONE) unless it is named there, never streamed whole by default.
- **Other nodes reach a worker as peers**: id, hostname, role, address, WireGuard key and
  whether it left (VTEPs, tunnels, the guard's trusted addresses, the managers to call,
  network inspect's peers). Their labels, resources, images and ports are for the managers'
  scheduler only; a worker gets its own record whole.

Each value's projection depends only on its key, its value and the node, never on other keys:
the snapshot and the events need no shared bookkeeping, and no order between a service and its
tasks can leak or lose anything. Managers (they hold the store) get everything verbatim.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum

from ferry.manager.store import keys
from ferry.model.node import Node
from ferry.model.service import ContainerTemplate, Service, ServiceSpec, Task

# what a worker never needs of another service's or task's container
BLANK_TEMPLATE = ContainerTemplate(image="", cmd=())


class Share(Enum):
    """How much of one value a worker gets."""

    WHOLE = "whole"  # verbatim
    OWN_DONE = "own done"  # the node's own finished task: stopping is all that is left
    NETWORKING = "networking"  # the data plane's facts, the same for every worker
    NONE = "none"  # not streamed to this node


def key_visible(key: str, node_id: str) -> bool:
    """Whether worker ``node_id`` may learn of ``key`` at all (a deletion tells the key only):
    not of another node's requests, whose ids are what answering them takes."""
    if key.startswith((keys.LOG_REQUESTS, keys.DOCTOR_REQUESTS)):
        return key.startswith((f"{keys.LOG_REQUESTS}{node_id}/",
                               f"{keys.DOCTOR_REQUESTS}{node_id}/"))  # fmt: skip
    return True


# the kinds of value a worker gets cut down, by key prefix
_PROJECTED: tuple[tuple[str, type[Service | Task | Node]], ...] = (
    (keys.SERVICES, Service),
    (keys.TASKS, Task),
    (keys.NODES, Node),
)


def share(key: str, obj: object, node_id: str) -> Share:
    """How much of the value ``obj`` under ``key`` the worker ``node_id`` gets. A value of a
    kind that needs projecting but could not be decoded is withheld (fail closed)."""
    if not keys.is_streamed(key) or not key_visible(key, node_id):
        return Share.NONE  # fail closed: only the streamed kinds reach a worker at all
    kind = next((t for prefix, t in _PROJECTED if key.startswith(prefix)), None)
    if kind is None:
        return Share.WHOLE
    if not isinstance(obj, kind):
        return Share.NONE
    return _share_of(obj, node_id)


def _share_of(obj: Service | Task | Node, node_id: str) -> Share:
    if isinstance(obj, Service):
        return Share.NETWORKING
    if isinstance(obj, Node):
        return Share.WHOLE if obj.node_id == node_id else Share.NETWORKING
    if obj.node_id != node_id or not node_id:
        return Share.NETWORKING
    return Share.OWN_DONE if obj.state.terminal else Share.WHOLE


def networking_service(svc: Service) -> Service:
    """A service as another node's agent needs it: see the module notes."""
    spec = svc.spec
    return Service(
        svc_id=svc.svc_id,
        spec=ServiceSpec(
            name=spec.name,
            template=BLANK_TEMPLATE,
            networks=spec.networks,
            aliases=spec.aliases,
            endpoint_mode=spec.endpoint_mode,
            ports=spec.ports,
        ),
    )


def networking_node(node: Node) -> Node:
    """Another node as a worker's data plane needs it: see the module notes."""
    return Node(
        node_id=node.node_id,
        hostname=node.hostname,
        role=node.role,
        addr=node.addr,
        wg_key=node.wg_key,
        left=node.left,
    )


def networking_task(task: Task) -> Task:
    """A task as the nodes it does not run on need it: who, where, and whether it serves."""
    return Task(
        task_id=task.task_id,
        svc_id=task.svc_id,
        service_name=task.service_name,
        slot=task.slot,
        template=BLANK_TEMPLATE,
        spec_version=task.spec_version,
        desired=task.desired,
        state=task.state,
        node_id=task.node_id,
    )


def finished_task(task: Task) -> Task:
    """The node's own finished task: a container it left running is stopped with the grace
    period; the image names it in listings. Nothing else of the template is needed again."""
    kept = ContainerTemplate(
        image=task.template.image, cmd=(), stop_grace_s=task.template.stop_grace_s
    )
    return replace(task, template=kept)


def project(obj: object, how: Share) -> object:
    """``obj`` cut down to ``how`` (WHOLE: itself). Raises ValueError for NONE, which has
    nothing to send."""
    if how == Share.WHOLE:
        return obj
    if how == Share.OWN_DONE and isinstance(obj, Task):
        return finished_task(obj)
    if how == Share.NETWORKING and isinstance(obj, Service):
        return networking_service(obj)
    if how == Share.NETWORKING and isinstance(obj, Task):
        return networking_task(obj)
    if how == Share.NETWORKING and isinstance(obj, Node):
        return networking_node(obj)
    raise ValueError(f"nothing to send of a {type(obj).__name__} shared as {how.value}")
