"""The filters of each list endpoint, as Docker names and matches them (``ferry.model.filters``).

Each endpoint has its accepted keys (anything else is ``invalid filter 'KEY'``), a check of
the values that have a fixed vocabulary, and the rules that match one object. The objects are
plain data (a container, a rendered network, a volume, a service, a task, a node); lookups an
endpoint needs (an image reference, a container's creation time) are passed in as functions,
so everything here is unit-tested without a daemon.

Sources: moby ``daemon/list.go`` (containers), ``daemon/network/filter.go`` (networks),
``volume/service`` (volumes), ``daemon/cluster/filters.go`` and swarmkit (services, tasks,
nodes), ``daemon/prune.go`` (prune).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ferry.errors import InvalidArgument
from ferry.model import filters as f
from ferry.model.container import Container, Status
from ferry.model.service import Task

CONTAINER_FILTERS = (
    "ancestor", "before", "exited", "expose", "health", "id", "is-task", "label", "name",
    "network", "publish", "since", "status", "volume",
)  # fmt: skip
CONTAINER_STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH_STATES = ("starting", "healthy", "unhealthy", "none")
NETWORK_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
NETWORK_TYPES = ("custom", "builtin")
BUILTIN_NETWORKS = ("bridge", "host", "none")  # libnetwork's pre-defined networks
VOLUME_FILTERS = ("dangling", "driver", "label", "name")
SERVICE_FILTERS = ("id", "label", "mode", "name")
SERVICE_MODES = ("replicated", "global", "replicated-job", "global-job")
# "_up-to-date" is the docker CLI's own (it waits for convergence with it): only tasks of the
# service's current spec version (moby daemon/cluster/filters.go, swarmkit's UpToDate)
TASK_FILTERS = ("desired-state", "id", "label", "name", "node", "service", "_up-to-date")
DESIRED_STATES = ("running", "shutdown", "accepted")
NODE_FILTERS = ("id", "label", "membership", "name", "node.label", "role")
NODE_ROLES = ("manager", "worker")
MEMBERSHIPS = ("accepted", "pending")
CONTAINER_PRUNE_FILTERS = ("label", "label!", "until")
NETWORK_PRUNE_FILTERS = ("label", "label!", "until")
VOLUME_PRUNE_FILTERS = ("all", "label", "label!")


def check_container_filters(filters: f.Filters) -> bool:
    """Refuse values Docker refuses; True when the filters list stopped containers too
    (Docker: a ``status`` filter, ``before`` or ``since`` imply ``all``)."""
    f.one_of(filters, "status", CONTAINER_STATUSES)
    for value in filters.get("health", []):
        if value not in HEALTH_STATES:
            raise InvalidArgument(f"Unrecognised filter value for health: {value}")
    f.integers(filters, "exited")
    f.port_ranges(filters, "publish")
    f.port_ranges(filters, "expose")
    f.flag(filters, "is-task")
    return any(key in filters for key in ("status", "before", "since"))


def with_since_before(filters: f.Filters, query: Mapping[str, str]) -> dict[str, list[str]]:
    """The ``since`` and ``before`` query parameters (docker-py's ``containers.list(since=…,
    before=…)``; not in Docker's API description, but read by moby's ``getContainersJSON``
    into ``ListOptions.Since``/``Before``) become the filters of the same names."""
    out = {key: list(values) for key, values in filters.items()}
    for key in ("since", "before"):
        value = query.get(key, "")
        if value and value not in out.get(key, []):
            out.setdefault(key, []).append(value)
    return out


def reference_times(filters: f.Filters, created_at: Callable[[str], str]) -> dict[str, str]:
    """The creation time of each container ``before``/``since`` name, looked up once and
    before any container is matched, so an unknown one is refused (``created_at`` raises
    NotFound, as Docker's ``No such container``) even when nothing would be listed."""
    refs = [*filters.get("before", []), *filters.get("since", [])]
    return {ref: created_at(ref) for ref in refs}


def container_rules(
    container: Container,
    summary: Mapping[str, Any],
    image_id: Callable[[str], str],
    created_at: Callable[[str], str],
) -> dict[str, f.Rule]:
    """The rules of ``/containers/json`` for one container and its rendered summary;
    ``image_id(ref)``: the id an image reference names ("" if none), ``created_at(ref)``: the
    creation time of a container (raises NotFound, as Docker's before/since do)."""
    config, state = container.config, container.state
    created = config.created_at
    networks: Mapping[str, Any] = summary["NetworkSettings"]["Networks"]
    exited = state.status == Status.EXITED and bool(state.started_at)
    return {
        "id": lambda v: f.pattern(v, config.container_id),
        "name": lambda v: f.pattern(v, "/" + config.name, config.name),
        "label": lambda v: f.labels(v, config.labels),
        "status": lambda v: f.exact(v, str(summary["State"])),
        "ancestor": lambda v: any(image_id(ref) == summary["ImageID"] for ref in v),
        "before": lambda v: all(created < created_at(ref) for ref in v),
        "since": lambda v: all(created > created_at(ref) for ref in v),
        "exited": lambda v: exited and state.exit_code in f.integers({"exited": v}, "exited"),
        "health": lambda v: f.exact(v, state.health or "none"),
        "network": lambda v: any(
            ref in networks or any(n["NetworkID"].startswith(ref) for n in networks.values())
            for ref in v
        ),
        "volume": lambda v: any(
            f.exact(v, m.get("Name", ""), m["Destination"]) for m in summary["Mounts"]
        ),
        "publish": lambda v: f.in_ranges(
            f.port_ranges({"publish": v}, "publish"),
            [(p.published, p.protocol) for p in config.ports],
        ),
        "expose": lambda v: f.in_ranges(
            f.port_ranges({"expose": v}, "expose"),
            [(p.target, p.protocol) for p in config.ports]
            + [(int(n), proto or "tcp") for n, _, proto in _split_ports(config.exposed_ports)],
        ),
        "is-task": lambda v: f.flag({"is-task": v}, "is-task") == bool(config.task_id),
    }


def _split_ports(ports: tuple[str, ...]) -> list[tuple[str, str, str]]:
    return [p.partition("/") for p in ports if p.partition("/")[0].isdigit()]


def check_network_filters(filters: f.Filters) -> None:
    f.flag(filters, "dangling")
    for value in filters.get("type", []):
        if value not in NETWORK_TYPES:
            raise InvalidArgument(f"invalid filter: 'type'='{value}'")


def network_rules(net: Mapping[str, Any], in_use: bool) -> dict[str, f.Rule]:
    """The rules of ``/networks`` for one rendered network (Docker's NetworkResource)."""
    name = str(net["Name"])
    labels = net.get("Labels")
    return {
        "name": lambda v: f.pattern(v, name),
        "id": lambda v: f.pattern(v, str(net["Id"])),
        "driver": lambda v: f.exact(v, str(net["Driver"])),
        "scope": lambda v: f.exact(v, str(net["Scope"])),
        "label": lambda v: f.labels(v, labels if isinstance(labels, dict) else {}),
        "dangling": lambda v: f.flag({"dangling": v}, "dangling") == (not in_use),
        "type": lambda v: f.exact(v, "builtin" if name in BUILTIN_NETWORKS else "custom"),
    }


def volume_rules(
    name: str, driver: str, have: Mapping[str, str], in_use: bool
) -> dict[str, f.Rule]:
    return {
        "name": lambda v: f.pattern(v, name),
        "driver": lambda v: f.exact(v, driver),
        "label": lambda v: f.labels(v, have),
        "dangling": lambda v: f.flag({"dangling": v}, "dangling") == (not in_use),
    }


def prune_rules(
    have: Mapping[str, str], created: float, until: Callable[[str], float]
) -> dict[str, f.Rule]:
    """``label``, ``label!`` and ``until`` (created before; ``until(value)`` gives seconds
    since the epoch) of the prune endpoints."""
    return {
        "label": lambda v: f.labels(v, have),
        "label!": lambda v: f.no_labels(v, have),
        "until": lambda v: all(created < until(value) for value in v),
    }


def service_rules(svc_id: str, name: str, mode: str, have: Mapping[str, str]) -> dict[str, f.Rule]:
    return {
        "id": lambda v: f.prefix(v, svc_id),
        "name": lambda v: f.prefix(v, name),
        "mode": lambda v: f.exact(v, mode),
        "label": lambda v: f.labels(v, have),
    }


def node_rules(
    node_id: str, hostname: str, role: str, membership: str, node_labels: Mapping[str, str]
) -> dict[str, f.Rule]:
    """Ferry's nodes have no engine labels: ``label`` matches only ``KEY``s of none."""
    return {
        "id": lambda v: f.prefix(v, node_id),
        "name": lambda v: f.prefix(v, hostname),
        "role": lambda v: f.exact(v, role),
        "membership": lambda v: f.exact(v, membership),
        "node.label": lambda v: f.labels(v, node_labels),
        "label": lambda v: f.labels(v, {}),
    }


def task_rules(
    task: Task,
    services: set[str],
    nodes: set[str],
    current: bool,
    service_labels: Mapping[str, str],
) -> dict[str, f.Rule]:
    """``services``/``nodes``: the ids the ``service``/``node`` references resolved to;
    ``current``: the task is of its service's current spec (``_up-to-date``);
    ``service_labels``: its service's labels, which ``label`` matches (swarmkit's task filter
    reads the task's ServiceAnnotations: how ``docker stack ps`` finds a stack's tasks)."""
    return {
        "service": lambda _: task.svc_id in services,
        "node": lambda _: task.node_id in nodes,
        "desired-state": lambda v: f.exact(v, task.desired.value),
        "id": lambda v: f.prefix(v, task.task_id),
        "name": lambda v: f.prefix(v, task.name),
        "label": lambda v: f.labels(v, service_labels),
        "_up-to-date": lambda _: current,
    }
