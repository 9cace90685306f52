"""A node obtains a task's image when the task is assigned: at once when it has it, else the
task is reported ``preparing`` while the image is pulled, and a failed pull rejects the task
with Docker's ERROR ("No such image: <ref>")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from ferry.agent.tasks import TaskAgent
from ferry.errors import NotFound, Unavailable
from ferry.model.service import ContainerTemplate, Task, TaskState


@dataclass
class FakeImages:
    local: set[str] = field(default_factory=set)
    registry: dict[str, Exception | None] = field(default_factory=dict)
    pulls: list[str] = field(default_factory=list)

    def get(self, ref: str) -> object:
        if ref not in self.local:
            raise NotFound(f"No such image: {ref}")
        return object()

    async def ensure(self, ref: str, *, pull: str = "missing", auth: object = None) -> object:
        self.pulls.append(f"{ref} {pull}")
        error = self.registry.get(ref, NotFound(f"No such image: {ref}"))
        if error is not None:
            raise error
        self.local.add(ref)
        return object()


@dataclass
class FakeLink:
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def call(self, method: str, path: str, body: dict[str, Any]) -> None:
        self.reports.append((path.split("/")[3], body))


def _agent(images: FakeImages) -> tuple[TaskAgent, FakeLink]:
    link = FakeLink()

    class Containers:
        pass

    containers = Containers()
    containers.images = images  # type: ignore[attr-defined]
    view = type("View", (), {"mirror": None})()
    agent = TaskAgent("n1", cast(Any, link), cast(Any, view), cast(Any, containers))
    return agent, link


def _task(image: str) -> Task:
    return Task("t1", "s1", "web", 1, ContainerTemplate(image, ()), 1, state=TaskState.ASSIGNED)


async def test_an_image_the_node_has_is_not_pulled() -> None:
    images = FakeImages(local={"nginx"})
    agent, link = _agent(images)
    assert await agent._obtain_image(_task("nginx"))
    assert (images.pulls, link.reports) == ([], [])


async def test_a_missing_image_is_pulled_while_the_task_is_preparing() -> None:
    images = FakeImages(registry={"nginx": None})
    agent, link = _agent(images)
    assert await agent._obtain_image(_task("nginx"))
    assert images.pulls == ["nginx missing"]
    assert link.reports == [("t1", {"state": "preparing", "message": "preparing"})]


async def test_an_image_no_registry_has_rejects_the_task_with_dockers_error() -> None:
    agent, link = _agent(FakeImages())
    assert not await agent._obtain_image(_task("nosuch:latest"))
    assert [body["state"] for _t, body in link.reports] == ["preparing", "rejected"]
    assert link.reports[-1][1]["error"] == "No such image: nosuch:latest"


async def test_an_unreachable_registry_rejects_the_task_saying_so() -> None:
    images = FakeImages(registry={"nginx": Unavailable("cannot reach the registry for nginx")})
    agent, link = _agent(images)
    assert not await agent._obtain_image(_task("nginx"))
    assert link.reports[-1][1]["error"] == "cannot reach the registry for nginx"
