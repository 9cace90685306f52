"""This host's share of the services: run the tasks assigned here, stop those told to stop,
and report every change of state to a manager.

Design notes. Level-triggered like the network side: on any change of the mirrored tasks (or a
local container ending) it compares, task by task, what the store wants of this node with the
containers it has, and acts. Each task's work runs in its own asyncio task, one at a time per
task id, so twenty replicas start in parallel and no task is ever started twice. A task's
container is named after it (``svc.slot.id``) and carries its id, which is how a restarted
ferryd recognises its tasks among the containers it finds again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from ferry.agent.container_requests import CreateRequest
from ferry.agent.containers import ContainerService
from ferry.agent.link import ManagerLink
from ferry.aio import cancel_and_wait
from ferry.daemon.logs import kv
from ferry.errors import FerryError, Forbidden, NotFound, Unavailable
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.container import NETWORK_BRIDGE, Container, ContainerConfig, NetworkChoice
from ferry.model.network import EndpointKind
from ferry.model.runopts import Resources, Security
from ferry.model.service import PublishMode, Task, TaskOptions, TaskState
from ferry.reconcile import Reconciler
from ferry.runtime.credentials import RegistryAuth

log = logging.getLogger("ferry.agent.tasks")

RETRY_S = 1.0
FILES_ATTEMPTS = 3
# a task in these states without a container is (still) to be started here; PREPARING too, so
# a ferryd restarted during a pull pulls again
STARTABLE = (TaskState.ASSIGNED, TaskState.PREPARING, TaskState.STARTING)


class TaskAgent(Reconciler):
    name = "task reconcile"
    retry_s = RETRY_S
    watched = (keys.TASKS, keys.ENDPOINTS)

    def __init__(
        self, node_id: str, link: ManagerLink, view: ClusterView, containers: ContainerService
    ) -> None:
        super().__init__(view.mirror)
        self.node_id = node_id
        self._link = link
        self._view = view
        self._containers = containers
        self._busy: dict[str, asyncio.Task[None]] = {}
        containers.file_source = self._task_files

    async def close(self) -> None:
        await cancel_and_wait(list(self._busy.values()))
        self._busy.clear()

    def container_exited(self, _container: Container) -> None:
        self.mark()

    # the comparison --------------------------------------------------------------------------
    def _local(self) -> dict[str, Container]:
        return {c.config.task_id: c for c in self._containers.all() if c.config.task_id}

    async def reconcile(self) -> None:
        local = self._local()
        mine = {t.task_id: t for t in self._view.tasks() if t.node_id == self.node_id}
        for task in mine.values():
            container = local.get(task.task_id)
            if task.desired == TaskState.RUNNING:
                if task.state in STARTABLE and container is None:
                    self._do(task.task_id, self._start(task))
                elif container is not None and container.running and container.state.health:
                    self._follow_health(task, container)
                elif container is not None and not container.running and not task.state.terminal:
                    self._do(task.task_id, self._report_exit(task, container))
                elif container is None and task.state == TaskState.RUNNING:
                    self._do(task.task_id, self._report(task, TaskState.FAILED, "container lost"))
            elif not task.state.terminal or (container is not None and container.running):
                # also when the leader already gave it up (its node seemed lost): it still runs
                self._do(task.task_id, self._shutdown(task, container))
        for task_id, container in local.items():
            if task_id not in mine:  # the task was forgotten: so is its container
                self._do(task_id, self._remove(container))

    def _do(self, task_id: str, work: Coroutine[Any, Any, None]) -> None:
        if task_id in self._busy:
            work.close()  # already being handled; the next pass looks again
            return

        async def guarded() -> None:
            try:
                await work
            except FerryError as exc:
                log.warning("task work failed; retrying", extra=kv(task=task_id, error=exc))
                await asyncio.sleep(RETRY_S)
                self.mark()
            finally:
                self._busy.pop(task_id, None)

        self._busy[task_id] = asyncio.get_running_loop().create_task(guarded())

    # the work --------------------------------------------------------------------------------
    async def _task_files(self, config: ContainerConfig) -> dict[str, bytes]:
        """The data of a task container's secrets and configs, from a manager (which hands
        them only to the node running the task). A manager whose mirror has not yet seen the
        task assigned here refuses; the next try, a moment later, is answered."""
        for attempt in range(FILES_ATTEMPTS):
            try:
                answer = await self._link.call("GET", f"/v1/tasks/{config.task_id}/files")
                break
            except (Forbidden, NotFound):
                if attempt == FILES_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(RETRY_S / 2)
        found = answer.get("Files") if isinstance(answer, dict) else None
        if not isinstance(found, dict):
            raise Unavailable(f"a manager answered task {config.task_id}'s files malformed")
        return {str(key): base64.b64decode(str(value)) for key, value in found.items()}

    async def _report(self, task: Task, state: TaskState, message: str, **extra: Any) -> None:
        body = {"state": state.value, "message": message, **extra}
        with contextlib.suppress(NotFound):  # forgotten meanwhile
            await self._link.call("POST", f"/v1/tasks/{task.task_id}/status", body)

    async def _obtain_image(self, task: Task) -> bool:
        """The task's image on this node, pulled when missing (task ``preparing`` meanwhile,
        as Docker's node does). A pull that fails rejects the task with Docker's ERROR
        ("No such image: <ref>"), which the orchestrator retries with its back-off. Returns
        whether the task can go on."""
        ref = task.template.image
        images = self._containers.images
        try:
            images.get(ref)
            return True
        except NotFound:
            pass
        if task.state != TaskState.PREPARING:
            await self._report(task, TaskState.PREPARING, "preparing")
        try:  # with the credentials a --with-registry-auth service carries, if any
            auth = RegistryAuth.from_header(task.template.registry_auth)
            await images.ensure(ref, pull="missing", auth=auth)
        except NotFound:
            await self._report(task, TaskState.REJECTED, "rejected", error=f"No such image: {ref}")
            return False
        except FerryError as exc:  # unreachable registry, refused credentials, a bad layer
            log.warning("pull failed", extra=kv(task=task.task_id, image=ref, error=exc))
            await self._report(task, TaskState.REJECTED, "rejected", error=str(exc))
            return False
        return True

    async def _start(self, task: Task) -> None:
        if not await self._obtain_image(task):
            return
        choices = []
        for ep in self._view.endpoints():
            if ep.kind == EndpointKind.TASK and ep.owner_id == task.task_id:
                choices.append(NetworkChoice(ep.net_id, (task.service_name,), ep_id=ep.ep_id))
        template = task.template
        svc = self._view.service(task.svc_id)
        if not choices and svc is not None and not svc.spec.networks:
            ingress = any(p.mode == PublishMode.INGRESS for p in svc.spec.ports)
            if not ingress:  # as in Docker: a task without networks is on the default bridge
                choices.append(NetworkChoice(NETWORK_BRIDGE))
        host_ports = tuple(
            (p.published, p.target, p.protocol)
            for p in (svc.spec.ports if svc else ())
            if p.mode == PublishMode.HOST
        )
        try:
            container = await self._containers.create(
                CreateRequest(
                    image=template.image,
                    cmd=template.cmd,
                    entrypoint=template.entrypoint,  # Command, merged with the image's at create
                    name=task.name,
                    env=template.env,
                    networks=tuple(choices),
                    labels={
                        **template.options.labels,
                        "com.docker.swarm.service.name": task.service_name,
                        "com.docker.swarm.task.id": task.task_id,
                        "com.docker.swarm.task.name": task.name,
                    },
                    task_id=task.task_id,
                    init=template.init,
                    host_ports=host_ports,
                    **run_options(template.options),
                )
            )
        except FerryError as exc:  # nothing can run it here (image, command): give it back
            await self._report(task, TaskState.REJECTED, "rejected", error=str(exc))
            return
        try:
            await self._containers.start(container.config.container_id)
        except FerryError as exc:
            await self._containers.remove(container.config.container_id, force=True)
            await self._report(task, TaskState.FAILED, "starting failed", error=str(exc))
            return
        checked = container.config.healthcheck is not None and container.config.healthcheck.enabled
        # with a health check, the task is running only once its container is healthy
        state, message = (
            (TaskState.STARTING, "starting") if checked else (TaskState.RUNNING, "started")
        )
        await self._report(task, state, message, container_id=container.config.container_id)

    def _follow_health(self, task: Task, container: Container) -> None:
        """Healthy: the task runs (DNS and VIPs take it). Unhealthy: it failed, as in Docker,
        and its container stops; the orchestrator starts another."""
        health = container.state.health
        if health == "healthy" and task.state == TaskState.STARTING:
            self._do(task.task_id, self._report(task, TaskState.RUNNING, "started (healthy)"))
        elif health == "unhealthy" and not task.state.terminal:
            self._do(task.task_id, self._unhealthy(task, container))

    async def _unhealthy(self, task: Task, container: Container) -> None:
        await self._containers.stop(container.config.container_id, task.template.stop_grace_s)
        await self._report(task, TaskState.FAILED, "unhealthy container",
                           error="task: unhealthy container")  # fmt: skip

    async def _report_exit(self, task: Task, container: Container) -> None:
        code = container.state.exit_code
        if code == 0:
            await self._report(task, TaskState.COMPLETE, "finished", exit_code=0)
        else:
            await self._report(
                task,
                TaskState.FAILED,
                "task: non-zero exit",
                error=f"exit code {code}",
                exit_code=code,
            )

    async def _shutdown(self, task: Task, container: Container | None) -> None:
        if container is not None and container.running:
            await self._containers.stop(container.config.container_id, task.template.stop_grace_s)
            container = self._containers.find(container.config.container_id)
        code = container.state.exit_code if container is not None else None
        await self._report(task, TaskState.SHUTDOWN, "shutdown", exit_code=code)

    async def _remove(self, container: Container) -> None:
        await self._containers.remove(container.config.container_id, force=True)


def run_options(options: TaskOptions) -> dict[str, Any]:
    """A service's task options as the container's run options."""
    return {
        "user": options.user,
        "working_dir": options.workdir,
        "mounts": options.mounts,
        "files": options.secrets + options.configs,
        "healthcheck": options.healthcheck,
        "security": Security(
            cap_add=options.cap_add, cap_drop=options.cap_drop, read_only=options.read_only
        ),
        "resources": Resources(
            memory_bytes=options.limit_memory_bytes,
            nano_cpus=options.limit_nano_cpus,
            pids_limit=options.limit_pids,
            memory_reservation_bytes=options.reserve_memory_bytes,
        ),
    }
