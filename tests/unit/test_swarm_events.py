"""``docker events`` of the swarm come from the store on every manager (moby
``daemon/events.go``): create, update with Docker's old/new attributes, remove; for nodes also
their state. What was there before the manager started is not news."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ferry.manager.store import keys
from ferry.manager.store.schema import MANAGER_TYPES
from ferry.manager.store.view import ClusterView
from ferry.manager.swarm_events import (
    NodeSeen,
    SwarmEvent,
    SwarmEvents,
    plan_node,
    plan_service,
)
from ferry.model.codec import encode
from ferry.model.mirror import Mirror
from ferry.model.node import Availability, Node, NodeSession, Role
from ferry.model.service import ContainerTemplate, Service, ServiceSpec, Task, TaskState
from ferry.model.swarm_objects import SwarmObject

WEB = Service("s1", ServiceSpec(name="web", template=ContainerTemplate("nginx:1", ()), replicas=2))
H2 = Node("n2", "h2", Role.WORKER, "10.0.0.2")


def test_a_service_is_created_updated_with_what_changed_and_removed() -> None:
    assert plan_service("s1", None, WEB) == SwarmEvent("service", "create", "s1", {"name": "web"})
    scaled = replace(
        WEB, spec=replace(WEB.spec, replicas=3, template=ContainerTemplate("nginx:2", ()))
    )
    event = plan_service("s1", WEB, scaled)
    assert event is not None and event.action == "update"
    assert event.attributes == {
        "name": "web", "image.old": "nginx:1", "image.new": "nginx:2",
        "replicas.old": "2", "replicas.new": "3",
    }  # fmt: skip
    relabelled = replace(WEB, spec=replace(WEB.spec, labels={"k": "v"}))
    assert plan_service("s1", WEB, relabelled) == SwarmEvent(
        "service", "update", "s1", {"name": "web"}
    )
    assert plan_service("s1", WEB, WEB) is None
    assert plan_service("s1", WEB, None) == SwarmEvent("service", "remove", "s1", {"name": "web"})


def test_a_node_update_names_availability_role_and_state_changes() -> None:
    drained = replace(H2, availability=Availability.DRAIN, role=Role.MANAGER)
    event = plan_node("n2", NodeSeen(H2, "ready"), NodeSeen(drained, "down"))
    assert event is not None and event.action == "update"
    assert event.attributes == {
        "name": "h2", "availability.old": "active", "availability.new": "drain",
        "role.old": "worker", "role.new": "manager", "state.old": "ready", "state.new": "down",
    }  # fmt: skip
    assert plan_node("n2", None, NodeSeen(H2, "ready")) == SwarmEvent(
        "node", "create", "n2", {"name": "h2"}
    )
    assert plan_node("n2", NodeSeen(H2, "down"), None) == SwarmEvent(
        "node", "remove", "n2", {"name": "h2"}
    )


def test_the_publisher_follows_the_mirror_from_its_baseline() -> None:
    mirror = Mirror(MANAGER_TYPES)
    mirror.reset([(keys.service("s0"), encode(replace(WEB, svc_id="s0")), 2)], 2)
    published: list[tuple[Any, ...]] = []
    publisher = SwarmEvents(ClusterView(mirror), lambda *event: published.append(event))
    mirror.subscribe(publisher.changed)
    publisher.changed(frozenset())
    assert published == []  # s0 was there before
    mirror.apply([(keys.service("s1"), encode(WEB), 3), (keys.node("n2"), encode(H2), 3)])
    session = NodeSession("n2", 7, "n1", "2026-01-01T00:00:00Z")
    mirror.apply([(keys.session("n2"), encode(session), 4)])
    mirror.apply([(keys.task("t1"), None, 5)])  # not a swarm event
    mirror.apply([(keys.service("s1"), None, 6)])
    assert [(*e[:2], e[3].get("state.new", "")) for e in published] == [
        ("service", "create", ""), ("node", "create", ""), ("node", "update", "ready"),
        ("service", "remove", ""),
    ]  # fmt: skip
    assert {e[4] for e in published} == {"swarm"}


def test_secrets_and_configs_are_created_updated_and_removed_by_name() -> None:
    mirror = Mirror(MANAGER_TYPES)
    mirror.reset([], 1)
    published: list[tuple[Any, ...]] = []
    publisher = SwarmEvents(ClusterView(mirror), lambda *event: published.append(event))
    mirror.subscribe(publisher.changed)
    publisher.changed(frozenset())
    secret = SwarmObject("x1", "db_password", "sealed")
    mirror.apply([(keys.swarm_secret("x1"), encode(secret), 2)])
    relabelled = replace(secret, labels={"k": "v"})
    mirror.apply([(keys.swarm_secret("x1"), encode(relabelled), 3)])
    mirror.apply([(keys.config("c1"), encode(SwarmObject("c1", "nginx.conf", "e30=")), 4)])
    mirror.apply([(keys.swarm_secret("x1"), None, 5)])
    assert [e[:4] for e in published] == [
        ("secret", "create", "x1", {"name": "db_password"}),
        ("secret", "update", "x1", {"name": "db_password"}),
        ("config", "create", "c1", {"name": "nginx.conf"}),
        ("secret", "remove", "x1", {"name": "db_password"}),
    ]


def test_an_update_says_its_state_when_it_starts_and_when_its_tasks_are_done() -> None:
    """Docker's updatestate.new (updating, completed, rollback_*): what scripts wait for."""
    assert plan_service("s1", WEB, WEB, "", "updating") == SwarmEvent(
        "service", "update", "s1", {"name": "web", "updatestate.new": "updating"}
    )
    assert plan_service("s1", WEB, WEB, "updating", "completed") == SwarmEvent(
        "service", "update", "s1",
        {"name": "web", "updatestate.old": "updating", "updatestate.new": "completed"},
    )  # fmt: skip
    assert plan_service("s1", WEB, WEB, "completed", "completed") is None


def test_the_publisher_follows_an_update_through_the_tasks() -> None:
    mirror = Mirror(MANAGER_TYPES)
    one = replace(WEB, spec=replace(WEB.spec, replicas=1))  # the one task below
    rolled = replace(one, spec_version=2, rolled_at="2026-01-01T00:00:01Z",
                     updated_at="2026-01-01T00:00:01Z")  # fmt: skip
    old_task = Task("t1", "s1", "web", 1, WEB.spec.template, 1, state=TaskState.RUNNING,
                    node_id="n2")  # fmt: skip
    session = NodeSession("n2", 7, "n1", "2026-01-01T00:00:00Z")
    mirror.reset(
        [
            (keys.service("s1"), encode(one), 2), (keys.task("t1"), encode(old_task), 2),
            (keys.node("n2"), encode(H2), 2), (keys.session("n2"), encode(session), 2),
        ],
        2,
    )  # fmt: skip
    published: list[tuple[Any, ...]] = []
    publisher = SwarmEvents(ClusterView(mirror), lambda *event: published.append(event))
    mirror.subscribe(publisher.changed)
    publisher.changed(frozenset())
    mirror.apply([(keys.service("s1"), encode(rolled), 3)])  # the update: t1 is of version 1
    new_task = replace(old_task, task_id="t2", spec_version=2)
    starting = replace(new_task, state=TaskState.STARTING)
    mirror.apply([(keys.task("t1"), None, 4), (keys.task("t2"), encode(starting), 4)])
    assert [e[3].get("updatestate.new") for e in published] == ["updating"]
    # completed only once the new task runs (swarmkit: every slot on the new spec)
    mirror.apply([(keys.task("t2"), encode(new_task), 5)])
    assert [e[3].get("updatestate.new") for e in published] == ["updating", "completed"]
