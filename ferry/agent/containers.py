"""Standalone containers on this host: create, start, stop, remove, and finding them again.

Design notes. A container is a directory (runtime.store), a network namespace
(``<prefix>c-<id12>``), its endpoints, a DNS socket pair inside that namespace, and an OCI
bundle run by runc under its monitor, conmon (runtime.runner, runtime.monitor). Starting
registers every undo step as it goes; a failure unwinds them in reverse, so nothing is left
half-made. The command's exit is noticed through a pidfd on the monitor, whether ferryd
started it or found it after a restart; then the network side is torn down, runc's record and
the root filesystem's mount removed, the exit code recorded, and the restart policy applied.
Stopping ferryd stops nothing: a restarted ferryd reads the directories, adopts the monitors
that still run, and finishes the containers that ended while it was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from ferry.agent.attachments import Attachments
from ferry.agent.container_config import effective_request
from ferry.agent.container_networks import ContainerNetworks
from ferry.agent.container_requests import (
    PASSED_FIELDS,
    CreateRequest,
    check_options,
    parse_signal,
    start_failure_exit_code,
)
from ferry.agent.health import HealthChecks
from ferry.agent.local_networks import LocalNetworks
from ferry.agent.networks import NetworkAgent
from ferry.agent.restarts import RestartBackoff, restarts_at_start, wants_restart
from ferry.daemon.logs import kv
from ferry.errors import Conflict, FerryError, InvalidArgument, NotFound, Unavailable
from ferry.events import EventBus
from ferry.kernel import nsfs, proc
from ferry.kernel.sandboxes import make_sandbox, remove_sandbox
from ferry.kernel.thread import KernelThread
from ferry.model.container import (
    NETWORK_HOST,
    AttachedEndpoint,
    Container,
    ContainerConfig,
    ContainerState,
    NetworkChoice,
    PublishedPort,
    Status,
)
from ferry.model.ids import new_hex_id
from ferry.model.names import random_name
from ferry.model.network import GWBRIDGE
from ferry.model.ports import DEFAULT_DATA_PATH_PORT, check_publishable
from ferry.model.rules import (
    check_aliases,
    check_container_name,
    check_hostname,
    check_labels,
    check_working_dir,
    parse_env,
)
from ferry.model.runopts import MountType
from ferry.model.times import now_iso
from ferry.network.drivers.gwbridge import GatewayBridge
from ferry.runtime import monitor
from ferry.runtime.images import Image, ImageStore
from ferry.runtime.runner import ContainerRunner
from ferry.runtime.store import ContainerStore

log = logging.getLogger("ferry.containers")

STOP_TIMEOUT_S = 10
KILL_WAIT_S = 10.0


class Dns(Protocol):
    async def attach(self, key: str, netns: Path) -> None: ...
    async def detach(self, key: str) -> None: ...
    def invalidate(self) -> None: ...


async def _kill_launched(launched: monitor.Launched) -> None:
    """Undo a container whose monitor started: its init first, then the monitor."""
    proc.kill_pids([launched.init_pid])
    await proc.wait_gone(launched.monitor, KILL_WAIT_S)


async def _both(
    first: Awaitable[monitor.Launched], second: Awaitable[list[AttachedEndpoint]]
) -> tuple[monitor.Launched, list[AttachedEndpoint]]:
    """Run both to their end (so each has registered its undo steps), then raise the first
    failure, if any."""
    done = await asyncio.gather(first, second, return_exceptions=True)
    for result in done:
        if isinstance(result, BaseException):
            raise result
    launched, endpoints = done
    assert isinstance(launched, monitor.Launched) and isinstance(endpoints, list)
    return launched, endpoints


FileSource = Callable[[ContainerConfig], Awaitable[dict[str, bytes]]]


class ContainerService:
    def __init__(
        self,
        *,
        netns_prefix: str,
        kernel: KernelThread,
        images: ImageStore,
        store: ContainerStore,
        runner: ContainerRunner,
        networks: Callable[[], NetworkAgent | None],
        dns: Dns | None,
        on_change: Callable[[], None],
        on_exit: Callable[[Container], None] = lambda _c: None,
        gateway: GatewayBridge | None = None,
        local: LocalNetworks | None = None,
        ports_in_use: Callable[[], set[str]] = set,
        data_path_port: Callable[[], int] = lambda: DEFAULT_DATA_PATH_PORT,
    ) -> None:
        self.gateway = gateway
        self.local = local
        self.nets = ContainerNetworks(networks, local, gateway)
        # host ports taken by others ("tcp/8080"): listeners and the routing mesh's ports
        self.ports_in_use = ports_in_use
        # the swarm's VXLAN port (this host's default outside a swarm): never published
        self.data_path_port = data_path_port
        # called with a starting container (endpoints attached) before its command runs
        self.prepare: list[Callable[[Container, Path], Awaitable[None]]] = []
        # the data of a starting container's secrets and configs (ContainerConfig.files), by
        # task_files.data_key: the task agent fetches it from a manager
        self.file_source: FileSource | None = None
        self._prefix = netns_prefix
        self.on_exit = on_exit
        self._kernel = kernel
        self.images = images
        self.store = store
        self.runner = runner
        self._networks = networks
        self.dns = dns
        self._on_change = on_change
        self.events = EventBus()  # the daemon's one bus: ferryd hands it to the other parts
        self._containers: dict[str, Container] = {}
        self._watchers: dict[str, proc.ExitWatcher] = {}
        # next exit (also ended by a removal, as Docker's stop waiters), and removal only
        self._exit_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._removal_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # attach requests waiting for a start: connected between create and start, so they
        # miss nothing the command writes
        self.attachments = Attachments(runner.paths)
        self.health = HealthChecks(runner, self.get, self._keep, lambda _c: None)
        self._backoff = RestartBackoff()

    # lookups ---------------------------------------------------------------------------------
    def all(self) -> list[Container]:
        return sorted(self._containers.values(), key=lambda c: c.config.created_at, reverse=True)

    def owner_ids(self) -> set[str]:
        """Containers that hold endpoints: the running ones and those being started."""
        starting = {cid for cid, lock in self._locks.items() if lock.locked()}
        return {cid for cid, c in self._containers.items() if c.running} | starting

    def find(self, ref: str) -> Container:
        ref = ref.lstrip("/")
        for container in self._containers.values():
            if ref in (container.config.container_id, container.config.name):
                return container
        hits = [c for c in self._containers.values() if c.config.container_id.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise InvalidArgument(f"container id prefix {ref} is ambiguous: use more characters")
        raise NotFound(f"No such container: {ref}")

    def get(self, container_id: str) -> Container | None:
        """A container by its full id; None once it is gone (removed, e.g. by --rm)."""
        return self._containers.get(container_id)

    def is_running(self, container_id: str) -> bool:
        """False also when the container is gone (removed, e.g. by --rm)."""
        container = self._containers.get(container_id)
        return container is not None and container.running

    def networks_of(self, container_id: str) -> tuple[str, ...]:
        container = self._containers.get(container_id)
        return tuple(ep.net_id for ep in container.state.endpoints) if container else ()

    def netns_path(self, container: Container) -> Path:
        return nsfs.netns_path(f"{self._prefix}c-{container.config.short_id}")

    def network_ref(self, ref: str) -> tuple[str, str]:
        """(name, id) of a network a container names; (ref, "") once the network is gone."""
        return self.nets.network_ref(ref)

    def is_local_network(self, net_id: str) -> bool:
        return self.nets.is_local(net_id)

    def replace(self, container: Container) -> None:
        """Keep a changed container (its config saved by the caller) and say so."""
        self._save(container)

    def changed(self) -> None:
        self._on_change()

    def event(self, container: Container, action: str, **extra: str) -> None:
        """Publish a container event: Docker's attributes are the image, the name, the
        labels and what the action adds (``exitCode``, ``signal``, ``oldName``)."""
        config = container.config
        attributes = {**config.labels, "image": config.image, "name": config.name, **extra}
        self.events.publish("container", action, config.container_id, attributes)

    def network_event(self, action: str, net_id: str, name: str, driver: str, cid: str) -> None:
        self.events.publish(
            "network", action, net_id, {"container": cid, "name": name, "type": driver}
        )

    def lock(self, container_id: str) -> asyncio.Lock:
        """Held while a container's record changes across an await (start, exit, network
        connect and disconnect, the verbs that change it): whoever holds it reads the record
        again first. A change without an await may do without it."""
        return self._locks.setdefault(container_id, asyncio.Lock())

    def _keep(self, container: Container) -> None:
        """The health checker's updates (the container may have ended meanwhile)."""
        current = self._containers.get(container.config.container_id)
        if current is not None and current.running:
            self._save(container)

    def _save(self, container: Container) -> Container:
        self._containers[container.config.container_id] = container
        self.store.save_state(container.config.container_id, container.state)
        return container

    @staticmethod
    def check_request(req: CreateRequest) -> tuple[str, ...]:
        """What a request must satisfy before anything is looked up (rules.py, Docker's
        rules; the command once merged with the image's); the environment as stored."""
        if req.name:
            check_container_name(req.name)
        check_hostname(req.hostname)
        check_working_dir(req.working_dir)
        check_labels(req.labels)
        for choice in req.networks:
            check_aliases(choice.aliases)
        return parse_env(req.env)

    async def create(self, req: CreateRequest) -> Container:
        env = self.check_request(req)
        image = self.images.get(req.image)
        req = effective_request(
            replace(req, env=env), image, self.published() | self.ports_in_use(),
            self.data_path_port(),
        )  # fmt: skip
        taken = {c.config.name for c in self._containers.values()}
        name = req.name.removeprefix("/") or random_name(taken)
        if name in taken:
            other = next(c for c in self._containers.values() if c.config.name == name)
            raise Conflict(
                f'The container name "/{name}" is already in use by container '
                f'"{other.config.container_id}". You have to remove (or rename) that container '
                "to be able to reuse that name."
            )
        self.nets.check(req.networks, (name, req.hostname))
        self._check_ports(req.ports)
        check_options(req, self.runner.host.available_caps)
        passed = {key: getattr(req, key) for key in PASSED_FIELDS}
        config = ContainerConfig(
            container_id=new_hex_id(),
            name=name,
            image=image.name,
            image_id=image.image_id,
            cmd=req.cmd,
            networks=req.networks,
            labels=dict(req.labels or {}),
            created_at=now_iso(),
            **passed,
        )
        config = replace(config, mounts=self.runner.claim_volumes(config.mounts))
        container = self.store.create(config)
        self._containers[config.container_id] = container
        self.event(container, "create")
        return container

    def published(self, *, but: str = "") -> set[str]:
        """Host ports this host's running containers publish (``"tcp/8080"``), but for the
        container ``but``. A stopped container holds no port (Docker binds them at start)."""
        out = set()
        for cid, container in self._containers.items():
            if cid == but or not (container.running or self._starting(cid)):
                continue
            out |= {f"{p.protocol}/{p.published}" for p in container.config.ports}
            out |= {f"{proto}/{pub}" for pub, _target, proto in container.config.host_ports}
        return out

    def _starting(self, cid: str) -> bool:
        lock = self._locks.get(cid)
        return lock is not None and lock.locked()

    def _check_ports(self, ports: tuple[PublishedPort, ...], *, but: str = "") -> None:
        taken = self.published(but=but) | self.ports_in_use()
        seen: set[str] = set()
        for port in ports:
            if port.protocol not in ("tcp", "udp"):
                raise InvalidArgument(f"invalid protocol {port.protocol!r}: use tcp or udp")
            for what, number in (("published", port.published), ("target", port.target)):
                if not 1 <= number <= 65535:
                    raise InvalidArgument(f"invalid {what} port {number}: use 1 to 65535")
            check_publishable(port.protocol, port.published, self.data_path_port())
            key = f"{port.protocol}/{port.published}"
            if key in taken or key in seen:
                raise Conflict(
                    f"Bind for {port.host_ip or '0.0.0.0'}:{port.published} failed: "
                    "port is already allocated"
                )
            seen.add(key)

    # start -----------------------------------------------------------------------------------
    async def start(self, ref: str) -> bool:
        """Start a container; False when it was running already. A start that fails leaves
        the container created, with the error and Docker's exit code (127: command not
        found, 126: not executable); one run with ``--rm`` is removed before the error is
        raised, as Docker does (moby daemon/start.go), which also ends the ``wait`` of a
        ``docker run --rm`` (condition ``removed``). Raises what the start met."""
        container = self.find(ref)
        cid = container.config.container_id
        try:
            return await self._start_locked(cid)
        except Exception:
            if container.config.auto_remove and cid in self._containers:
                try:
                    await self.remove(cid, force=True)
                except FerryError as exc:
                    log.warning("removal after failed start", extra=kv(id=cid[:12], error=exc))
            raise

    async def _start_locked(self, cid: str) -> bool:
        async with self.lock(cid):
            container = self._containers[cid]
            if container.running:
                return False
            undo: list[Callable[[], Awaitable[None]]] = []
            try:
                # inside the try: a missing image or a taken port fails the start as any other
                # failure does, and ends the attach requests that wait for it
                image = self.image_of(container.config)
                self._check_ports(container.config.ports, but=cid)
                await self._start(container, image, undo)
            except BaseException as exc:
                for step in reversed(undo):
                    try:
                        await step()
                    except FerryError as undo_exc:
                        log.warning(
                            "undo step failed", extra=kv(container=cid[:12], error=undo_exc)
                        )
                failed = replace(
                    ContainerState(status=Status.CREATED, error=str(exc)),
                    restart_count=container.state.restart_count,
                    exit_code=start_failure_exit_code(str(exc), container.state.exit_code),
                    finished_at=container.state.finished_at,
                )
                self._save(Container(container.config, failed))
                self.attachments.fail(cid)
                self._on_change()
                raise
        return True

    def image_of(self, config: ContainerConfig) -> Image:
        """The image a container runs on: the one it was created from, by id (Docker pins
        containers so), even when its name now tags another image or none. Raises
        ``NotFound``."""
        if config.image_id:
            return self.images.by_id(config.image_id, config.image)
        return self.images.get(config.image)

    def listed_image(self, config: ContainerConfig) -> str:
        """The image ``docker ps`` lists a container under (daemon/list.go): the name it was
        created from while that name still tags its image, else the image's id."""
        if not config.image_id:
            return config.image
        try:
            same = self.images.lookup(config.image) == config.image_id
        except (NotFound, InvalidArgument):
            same = False
        return config.image if same else config.image_id

    async def _start(
        self, container: Container, image: Image, undo: list[Callable[[], Awaitable[None]]]
    ) -> None:
        config = container.config
        cid = config.container_id
        netns_name, path = "", None  # --network host: the host's own namespace
        if config.network_mode != NETWORK_HOST:
            netns_name = f"{self._prefix}c-{config.short_id}"
            path = nsfs.netns_path(netns_name)
            await self._kernel.run(make_sandbox, netns_name)
            undo.append(functools.partial(self._kernel.run, remove_sandbox, netns_name))
        # The runtime's part and the network's at once: runc joins the namespace by its path
        # and needs none of its endpoints; both register their undo steps before either fails.
        launched, endpoints = await _both(
            self._launch(container, image, path, undo), self._wire(config, path, undo)
        )
        self.runner.write_files(config, tuple(endpoints))  # now with the addresses
        self._containers[cid] = Container(
            config, replace(container.state, endpoints=tuple(endpoints), netns=netns_name)
        )
        if self.dns is not None and path is not None:
            await self.dns.attach(cid, path)
            undo.append(functools.partial(self.dns.detach, cid))
        if path is not None:
            for hook in self.prepare:
                await hook(self._containers[cid], path)
        self._on_change()
        await self.attachments.connect_waiting(container)
        await self.runner.runc.start(cid)
        state = replace(
            ContainerState(),
            status=Status.RUNNING,
            shim_pid=launched.monitor.pid,
            shim_start=launched.monitor.start_time,
            pid=launched.init_pid,
            pid_start=proc.start_time_of(launched.init_pid) or 0,
            started_at=now_iso(),
            netns=netns_name,
            endpoints=tuple(endpoints),
            restart_count=container.state.restart_count,
        )
        self._save(Container(config, state))
        self._on_change()  # the container is running now: published ports and local DNS follow
        for ep in endpoints:  # Docker's order: the networks are connected, then it starts
            self.network_event("connect", ep.net_id, ep.net_name, ep.driver, cid)
        self.event(self._containers[cid], "start")
        self._watch(cid, launched.monitor)
        self.health.watch(self._containers[cid])
        log.info(
            "container started",
            extra=kv(name=config.name, id=config.short_id, pid=launched.init_pid),
        )

    async def _wire(
        self, config: ContainerConfig, path: Path | None, undo: list[Callable[[], Awaitable[None]]]
    ) -> list[AttachedEndpoint]:
        """The endpoints in the container's network namespace (each undone on failure)."""
        endpoints: list[AttachedEndpoint] = []
        if path is None:
            return endpoints
        for i, choice in enumerate(config.networks):
            attached = await self.nets.attach(config, choice, path, f"eth{i}")
            endpoints.append(attached)
            undo.append(functools.partial(self.nets.detach, attached, path))
        if self.gateway is not None and self.nets.needs_egress(config):
            attached = await self.gateway.attach(
                path,
                f"eth{len(endpoints)}",
                default_route=not self.nets.default_route_network(config),
            )
            endpoints.append(attached)
            undo.append(functools.partial(self.nets.detach, attached, path))
        return endpoints

    async def _launch(
        self,
        container: Container,
        image: Image,
        netns: Path | None,
        undo: list[Callable[[], Awaitable[None]]],
    ) -> monitor.Launched:
        """Bundle and monitor: the container exists in runc, its command not yet started."""
        config = container.config
        undo.append(functools.partial(self.runner.cleanup, config))
        files = None
        if config.files:
            if self.file_source is None:
                raise InvalidArgument(f"container {config.name} has secrets but no swarm to ask")
            files = await self.file_source(config)
        self.runner.prepare(container, image, netns, (), files)
        paths = self.runner.paths(config)
        paths.exit_file(config.container_id).unlink(missing_ok=True)
        argv = monitor.conmon_argv(
            config.container_id,
            config.name,
            paths,
            self.runner.runc.argv(),
            tty=config.tty,
            stdin=config.open_stdin,
            leave_stdin_open=config.open_stdin and not config.stdin_once,
        )
        launched = await monitor.launch(argv, paths)
        undo.append(functools.partial(_kill_launched, launched))
        return launched

    # exit ------------------------------------------------------------------------------------
    def _watch(self, cid: str, monitor_ref: proc.ProcRef) -> None:
        self._watchers[cid] = proc.ExitWatcher(
            monitor_ref, lambda _status: self._spawn(self._finish(cid))
        )

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, cid: str) -> None:
        async with self.lock(cid):
            container = self._containers.get(cid)
            if container is None or not container.running:
                return
            self._watchers.pop(cid, None)
            self.health.forget(cid)
            paths = self.runner.paths(container.config)
            code = monitor.read_exit_code(paths, cid)
            await self._teardown(container)
            await self.runner.cleanup(container.config)
            state = replace(
                container.state,
                status=Status.EXITED,
                exit_code=255 if code is None else code,
                oom_killed=paths.oom_file.exists(),
                finished_at=now_iso(),
                pid=0,
                pid_start=0,
                shim_pid=0,
                shim_start=0,
                netns="",
                endpoints=(),
                paused=False,
                health="",
                health_failing=0,
            )
            restart = wants_restart(container.config, state)
            state = replace(state, restarting=restart)
            self._save(Container(container.config, state))
            self._on_change()
            self.event(container, "die", exitCode=str(state.exit_code))
            for ep in container.state.endpoints:
                self.network_event("disconnect", ep.net_id, ep.net_name, ep.driver, cid)
            log.info("container exited", extra=kv(name=container.config.name, code=state.exit_code))
        for waiter in self._exit_waiters.pop(cid, []):
            if not waiter.done():
                waiter.set_result(state.exit_code)
        self.on_exit(self._containers.get(cid, container))
        if container.config.auto_remove:
            await self.remove(cid, force=True)
        elif restart:
            await self._restart_later(cid, container.state.started_at)

    async def _restart_later(self, cid: str, started_at: str) -> None:
        """Start again after the restart policy's delay, unless the user stopped or removed
        the container meanwhile."""
        await asyncio.sleep(self._backoff.next_delay(cid, started_at))
        container = self._containers.get(cid)
        if container is None or not container.state.restarting or container.running:
            return
        count = container.state.restart_count + 1
        state = replace(container.state, restarting=False, restart_count=count)
        self._save(Container(container.config, state))
        await self._start_quietly(cid)

    async def _teardown(self, container: Container) -> None:
        cid = container.config.container_id
        if self.dns is not None:
            await self.dns.detach(cid)
        for attached in container.state.endpoints:
            try:
                await self.nets.detach(
                    attached, None
                )  # the namespace goes next, with what it holds
            except FerryError as exc:
                log.warning("endpoint teardown failed", extra=kv(ep=attached.ep_id[:12], error=exc))
        if container.state.netns:
            await self._kernel.run(remove_sandbox, container.state.netns)

    # stop / kill / remove --------------------------------------------------------------------
    def _init_ref(self, container: Container) -> proc.ProcRef:
        return proc.ProcRef(container.state.pid, container.state.pid_start)

    def _mark_stopped(self, container: Container) -> Container:
        """A stop or kill the user asked for: no restart policy applies to this exit."""
        if container.state.stopped_by_user and not container.state.restarting:
            return container
        state = replace(container.state, stopped_by_user=True, restarting=False)
        return self._save(Container(container.config, state))

    async def kill(self, ref: str, sig: int = signal.SIGKILL) -> None:
        container = self.find(ref)
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        container = self._mark_stopped(container)
        self.event(container, "kill", signal=str(int(sig)))
        if container.state.paused and sig == signal.SIGKILL:
            # a frozen process takes SIGKILL only once thawed (Docker thaws it too)
            with contextlib.suppress(FerryError):
                await self.runner.runc.resume(container.config.container_id)
        if not proc.signal_process(self._init_ref(container), sig):
            proc.signal_process(
                proc.ProcRef(container.state.shim_pid, container.state.shim_start), sig
            )

    def _next_exit(self, cid: str) -> asyncio.Future[int]:
        """A future resolved with the exit code the next time the container's command ends."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._exit_waiters.setdefault(cid, []).append(future)
        return future

    async def _wait_done(self, future: asyncio.Future[int], timeout_s: float | None) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, ref: str, timeout_s: float | None = None, sig: int | None = None) -> bool:
        """``sig`` (the container's stop signal, else SIGTERM), then SIGKILL after ``timeout_s``
        (None: the container's stop timeout, else 10 s; ``math.inf``: no limit, as Docker's
        negative timeout); False when it was not running."""
        container = self.find(ref)
        cid = container.config.container_id
        if container.state.restarting:  # between two runs: stopping cancels the restart
            self._save(Container(container.config, replace(container.state, restarting=False,
                                                           stopped_by_user=True)))  # fmt: skip
            return True
        if not container.running:
            return False
        container = self._mark_stopped(container)
        if timeout_s is None:
            timeout_s = container.config.stop_timeout_s
            timeout_s = STOP_TIMEOUT_S if timeout_s < 0 else timeout_s
        if sig is None:
            sig = parse_signal(container.config.stop_signal)
        exited = self._next_exit(cid)
        # PID 1 of a namespace ignores a signal it does not catch: then waiting is pointless.
        # tini (--init) takes signals with sigwait, which /proc does not show: it forwards them.
        listens = container.config.init or proc.catches(container.state.pid, sig)
        if sig != signal.SIGKILL and timeout_s > 0 and not container.state.paused and listens:
            proc.signal_process(self._init_ref(container), sig)
            if await self._wait_done(exited, None if math.isinf(timeout_s) else timeout_s):
                self.event(container, "stop")
                return True
        await self.kill(cid, signal.SIGKILL)
        if not await self._wait_done(exited, KILL_WAIT_S):
            raise Unavailable(f"container {container.config.name} did not stop")
        self.event(container, "stop")
        return True

    async def restart(
        self, ref: str, timeout_s: float | None = None, sig: int | None = None
    ) -> None:
        container = self.find(ref)
        await self.stop(container.config.container_id, timeout_s, sig)
        await self.start(container.config.container_id)
        self.event(container, "restart")

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> Container:
        """Remove a container (``force``: also a running one); its anonymous volumes go with
        it when ``volumes`` (``rm -v``) or it was run with ``--rm``, as in Docker."""
        container = self.find(ref)
        cid = container.config.container_id
        if container.running:
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {cid}. Stop the container before "
                    "attempting removal or force remove"
                )
            exited = self._next_exit(cid)
            await self.kill(cid, signal.SIGKILL)
            if not await self._wait_done(exited, KILL_WAIT_S):
                raise Unavailable(f"container {container.config.name} did not stop")
        async with self.lock(cid):
            if cid not in self._containers:
                return container  # removed meanwhile (--rm)
            container = self._containers.pop(cid)
            try:
                await self.runner.cleanup(container.config)
                self.store.remove(cid)
            finally:
                self._end_waiters(cid, container.state.exit_code)
        self._locks.pop(cid, None)
        self._backoff.forget(cid)
        if volumes or container.config.auto_remove:
            self._remove_anonymous_volumes(container)
        self._on_change()
        self.event(container, "destroy")
        return container

    def volumes_in_use(self) -> dict[str, list[str]]:
        """Volume name → the containers (names) that mount it."""
        out: dict[str, list[str]] = {}
        for container in self._containers.values():
            for mount in container.config.mounts:
                if mount.type == MountType.VOLUME:
                    out.setdefault(mount.source, []).append(container.config.name)
        return out

    def _remove_anonymous_volumes(self, container: Container) -> None:
        used = self.volumes_in_use()
        for mount in container.config.mounts:
            if mount.type != MountType.VOLUME or mount.source in used:
                continue
            with contextlib.suppress(FerryError):
                if self.runner.volumes.get(mount.source).anonymous:
                    self.runner.volumes.remove(mount.source, [])

    async def attach_socket(self, ref: str) -> socket.socket | None:
        """A connection to the container's output (and stdin), see ``Attachments``."""
        container = self.find(ref)
        return await self.attachments.open(container)

    def resize(self, ref: str, height: int, width: int) -> None:
        container = self.find(ref)
        if container.running and container.config.tty:
            monitor.resize(self.runner.paths(container.config), height, width)

    def exit_future(self, ref: str, condition: str = "not-running") -> asyncio.Future[int]:
        """The exit code once Docker's wait ``condition`` holds: ``not-running`` now if it
        is not running, else when it ends; ``next-exit`` when its command next ends or it is
        removed (a container that never ran, e.g. its start failed, waits for either);
        ``removed`` when it is removed. Registered at once, so nothing right after this call
        is missed. Raises NotFound."""
        container = self.find(ref)
        cid = container.config.container_id
        if condition == "removed":
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._removal_waiters.setdefault(cid, []).append(future)
            return future
        if container.running or condition == "next-exit":
            return self._next_exit(cid)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(container.state.exit_code)
        return done

    def _end_waiters(self, cid: str, exit_code: int) -> None:
        """A removal: every waiter of the container ends, with its last exit code (Docker's
        ``SetRemoved`` wakes both its removal and its stop waiters)."""
        for waiter in self._exit_waiters.pop(cid, []) + self._removal_waiters.pop(cid, []):
            if not waiter.done():
                waiter.set_result(exit_code)

    # network connect / disconnect ------------------------------------------------------------
    async def connect(self, ref: str, choice: NetworkChoice) -> None:
        container = self.find(ref)
        cid = container.config.container_id
        async with self.lock(cid):
            container = self._containers[cid]
            network = self.nets.network(choice.network)
            known = {self.nets.net_id(c.network) for c in container.config.networks}
            if network.net_id in known:
                raise Conflict(
                    f"endpoint with name {container.config.name} already exists in network "
                    f"{network.name}"
                )
            self.nets.check((choice,), (container.config.name, container.config.hostname))
            config = replace(container.config, networks=(*container.config.networks, choice))
            state = container.state
            if container.running:  # attached first: a failed attach leaves the config as it was
                used = {ep.ifname for ep in state.endpoints}
                ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
                attached = await self.nets.attach(
                    config, choice, nsfs.netns_path(state.netns), ifname
                )
                state = replace(state, endpoints=(*state.endpoints, attached))
                self.runner.write_files(config, state.endpoints)
            self.store.save_config(config)
            self._save(Container(config, state))
        self._on_change()
        self.network_event("connect", network.net_id, network.name, network.driver.value, cid)

    async def disconnect(self, ref: str, net_id: str) -> None:
        container = self.find(ref)
        cid = container.config.container_id
        async with self.lock(cid):
            container = self._containers[cid]
            keep = tuple(
                c for c in container.config.networks if self.nets.net_id(c.network) != net_id
            )
            if len(keep) == len(container.config.networks):
                raise NotFound(f"container {container.config.name} is not connected to {net_id}")
            config = replace(container.config, networks=keep)
            self.store.save_config(config)
            state = container.state
            netns = nsfs.netns_path(state.netns) if state.netns else None
            for attached in [ep for ep in state.endpoints if ep.net_id == net_id]:
                await self.nets.detach(attached, netns)
            state = replace(
                state, endpoints=tuple(e for e in state.endpoints if e.net_id != net_id)
            )
            self._save(Container(config, state))
        self._on_change()
        name = next((c.network for c in container.config.networks if c not in keep), net_id)
        self.network_event("disconnect", net_id, name, "", cid)

    # restart of ferryd -----------------------------------------------------------------------
    async def restore(self) -> None:
        """Find the containers again: adopt running monitors, finish those that ended
        meanwhile, and start again what a restart policy keeps running (Docker does so at
        daemon start: ``always``, and ``unless-stopped`` unless the user stopped it)."""
        self.store.remove_incomplete()
        found = self.store.load_all()
        held = [(ep.net_id, ep.ip) for c in found if c.running for ep in c.state.endpoints]
        if self.gateway is not None:
            self.gateway.adopt({ip for net_id, ip in held if net_id == GWBRIDGE})
        if self.local is not None:
            await self.local.restore(held)
        for container in found:
            cid = container.config.container_id
            self._containers[cid] = container
            if not container.running:
                if restarts_at_start(container):
                    self._spawn(self._start_quietly(cid))
                continue
            monitor_ref = proc.ProcRef(container.state.shim_pid, container.state.shim_start)
            if monitor_ref.alive():
                if self.dns is not None:
                    await self.dns.attach(cid, nsfs.netns_path(container.state.netns))
                self._watch(cid, monitor_ref)
                self.health.watch(container)
                log.info("adopted running container", extra=kv(name=container.config.name))
            else:
                self._spawn(self._finish(cid))
        self._on_change()

    async def _start_quietly(self, cid: str) -> None:
        try:
            await self.start(cid)
        except FerryError as exc:
            log.warning("restart at start failed", extra=kv(id=cid[:12], error=exc))

    async def close(self) -> None:
        """ferryd stops: stop watching (containers keep running), let finishing work end."""
        await self.health.close()
        for watcher in self._watchers.values():
            watcher.cancel()
        self._watchers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
