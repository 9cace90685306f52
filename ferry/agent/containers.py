"""Standalone containers on this host: create, start, stop, remove, and finding them again.

Design notes. A container is a directory (runtime.store), a network namespace
(``<prefix>c-<id12>``), its endpoints, a DNS socket pair inside that namespace, and one shim
process that waits for the command (runtime.bundle). Starting registers every undo step as it
goes; a failure unwinds them in reverse, so nothing is left half-made. The command's exit is
noticed through a pidfd on the shim, whether ferryd started it or found it after a restart;
then the network side is torn down and the exit code recorded. Stopping ferryd stops nothing:
a restarted ferryd reads the directories, adopts the shims that still run, and finishes the
containers that ended while it was away.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ferry.agent.local_networks import LocalNetworks
from ferry.agent.networks import NetworkAgent
from ferry.daemon.files import write_atomic
from ferry.daemon.logs import kv
from ferry.errors import Conflict, FerryError, InvalidArgument, NotFound, Unavailable
from ferry.kernel import nsfs, proc
from ferry.kernel.sandboxes import make_sandbox, remove_sandbox
from ferry.kernel.thread import KernelThread
from ferry.model.container import (
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
from ferry.model.network import GWBRIDGE, Driver, Network, Scope
from ferry.model.ports import check_publishable
from ferry.model.rules import (
    check_aliases,
    check_command,
    check_container_name,
    check_hostname,
    check_labels,
    check_working_dir,
    parse_env,
)
from ferry.model.times import now_iso
from ferry.network import ipam
from ferry.network.drivers.gwbridge import GatewayBridge
from ferry.runtime import bundle
from ferry.runtime.images import Image, ImageStore, has_executable
from ferry.runtime.store import ContainerStore

log = logging.getLogger("ferry.containers")

STOP_TIMEOUT_S = 10
KILL_WAIT_S = 10.0
INIT_WAIT_S = 3.0


class Dns(Protocol):
    async def attach(self, key: str, netns: Path) -> None: ...
    async def detach(self, key: str) -> None: ...
    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class CreateRequest:
    image: str
    cmd: tuple[str, ...]
    name: str = ""
    env: tuple[str, ...] = ()
    hostname: str = ""
    networks: tuple[NetworkChoice, ...] = ()
    auto_remove: bool = False
    labels: dict[str, str] | None = None
    working_dir: str = ""
    task_id: str = ""
    init: bool = False
    ports: tuple[PublishedPort, ...] = ()
    host_ports: tuple[tuple[int, int, str], ...] = ()


async def _kill_shim(shim: proc.ProcRef) -> None:
    """Undo a spawned shim: its child (the container's init) first, so nothing outlives it."""
    proc.kill_pids(proc.children_of(shim.pid) if shim.alive() else [])
    proc.signal_process(shim, signal.SIGKILL)
    await proc.wait_gone(shim, INIT_WAIT_S)


class ContainerService:
    def __init__(
        self,
        *,
        netns_prefix: str,
        kernel: KernelThread,
        images: ImageStore,
        store: ContainerStore,
        networks: Callable[[], NetworkAgent | None],
        dns: Dns | None,
        on_change: Callable[[], None],
        on_exit: Callable[[Container], None] = lambda _c: None,
        gateway: GatewayBridge | None = None,
        local: LocalNetworks | None = None,
        ports_in_use: Callable[[], set[str]] = set,
    ) -> None:
        self.gateway = gateway
        self.local = local
        # host ports taken by others ("tcp/8080"): listeners and the routing mesh's ports
        self.ports_in_use = ports_in_use
        # called with a starting container (endpoints attached) before its command runs
        self.prepare: list[Callable[[Container, Path], Awaitable[None]]] = []
        self._prefix = netns_prefix
        self.on_exit = on_exit
        self._kernel = kernel
        self.images = images
        self.store = store
        self._networks = networks
        self.dns = dns
        self._on_change = on_change
        self._containers: dict[str, Container] = {}
        self._watchers: dict[str, proc.ExitWatcher] = {}
        self._exit_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    def _save(self, container: Container) -> Container:
        self._containers[container.config.container_id] = container
        self.store.save_state(container.config.container_id, container.state)
        return container

    # networks: local ones (bridge, macvlan) here, swarm ones through the network agent -------
    def _network_agent(self, network: str) -> NetworkAgent:
        agent = self._networks()
        if agent is None:
            raise NotFound(
                f"network {network} not found: it is not a local network, and this node is not "
                "part of a swarm"
            )
        return agent

    def _local(self, ref: str) -> Network | None:
        return self.local.find(ref) if self.local is not None else None

    def _network(self, ref: str) -> Network:
        local = self._local(ref)
        return local if local is not None else self._network_agent(ref).resolve(ref)

    def network_ref(self, ref: str) -> tuple[str, str]:
        """(name, id) of a network a container names; (ref, "") once the network is gone."""
        try:
            network = self._network(ref)
        except FerryError:
            return ref, ""
        return network.name, network.net_id

    def _net_id(self, ref: str) -> str:
        """A network's id, or the reference itself once the network is gone."""
        try:
            return self._network(ref).net_id
        except NotFound:
            return ref

    def _default_route_network(self, config: ContainerConfig) -> str:
        """The first local network that leads outside gives the default route; the egress
        bridge gives it only to containers without one."""
        for choice in config.networks:
            local = self._local(choice.network)
            if local is not None and not local.internal:
                return local.net_id
        return ""

    async def _attach(
        self, config: ContainerConfig, choice: NetworkChoice, netns: Path, ifname: str
    ) -> AttachedEndpoint:
        """Wire one network into the namespace (``_detach`` undoes it)."""
        local = self._local(choice.network)
        if local is not None and self.local is not None:
            default = self._default_route_network(config) == local.net_id
            return await self.local.attach(choice, netns, ifname, default_route=default)
        agent = self._network_agent(choice.network)
        return await agent.attach(
            choice,
            netns,
            ifname,
            owner_id=config.container_id,
            name=config.name,
            hostname=config.effective_hostname,
        )

    async def _detach(self, attached: AttachedEndpoint, netns: Path | None) -> None:
        if attached.net_id == GWBRIDGE:
            if self.gateway is not None:
                await self.gateway.detach(attached)
        elif self.local is not None and self.local.get(attached.net_id) is not None:
            await self.local.detach(attached, netns)
        else:
            agent = self._networks()
            if agent is not None:
                await agent.detach(attached)

    def _check_networks(self, choices: tuple[NetworkChoice, ...], names: tuple[str, ...]) -> None:
        """Each network once, attachable, the address asked for inside it, and no DNS name
        (``names``: the container's name and hostname, plus each network's aliases) that
        would shadow a service there."""
        seen = set()
        for choice in choices:
            check_aliases(choice.aliases)
            network = self._network(choice.network)
            if network.net_id in seen:
                raise InvalidArgument(f"network {network.name} is given twice")
            seen.add(network.net_id)
            if network.driver == Driver.OVERLAY and not network.attachable and not choice.ep_id:
                raise InvalidArgument(
                    f"network {network.name} is not manually attachable: create it with "
                    "--attachable to run standalone containers on it"
                )
            if choice.ip:
                ipam.check_static_ip(network.subnet, network.gateway, choice.ip, set())
            agent = self._networks()
            if network.scope == Scope.SWARM and agent is not None and not choice.ep_id:
                agent.check_names(network, (*names, *choice.aliases))

    @staticmethod
    def check_request(req: CreateRequest) -> tuple[str, ...]:
        """What a request must satisfy before anything is looked up (rules.py, Docker's
        rules); the environment as stored."""
        if req.name:
            check_container_name(req.name)
        check_command(req.cmd)
        check_hostname(req.hostname)
        check_working_dir(req.working_dir)
        check_labels(req.labels)
        for choice in req.networks:
            check_aliases(choice.aliases)
        return parse_env(req.env)

    async def create(self, req: CreateRequest) -> Container:
        env = self.check_request(req)
        image = self.images.get(req.image)
        taken = {c.config.name for c in self._containers.values()}
        name = req.name.removeprefix("/") or random_name(taken)
        if name in taken:
            other = next(c for c in self._containers.values() if c.config.name == name)
            raise Conflict(
                f'The container name "/{name}" is already in use by container '
                f'"{other.config.container_id}". You have to remove (or rename) that container '
                "to be able to reuse that name."
            )
        self._check_networks(req.networks, (name, req.hostname))
        probe = ContainerConfig("0" * 64, name, image.name, req.cmd, env=env)
        self._check_command(probe, image)
        self._check_ports(req.ports)
        config = ContainerConfig(
            container_id=new_hex_id(),
            name=name,
            image=image.name,
            cmd=req.cmd,
            env=env,
            hostname=req.hostname,
            networks=req.networks,
            auto_remove=req.auto_remove,
            labels=dict(req.labels or {}),
            working_dir=req.working_dir,
            created_at=now_iso(),
            task_id=req.task_id,
            init=req.init,
            ports=req.ports,
            host_ports=req.host_ports,
        )
        container = self.store.create(config)
        self._containers[config.container_id] = container
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
            check_publishable(port.protocol, port.published)
            key = f"{port.protocol}/{port.published}"
            if key in taken or key in seen:
                raise Conflict(
                    f"Bind for {port.host_ip or '0.0.0.0'}:{port.published} failed: "
                    "port is already allocated"
                )
            seen.add(key)

    # start -----------------------------------------------------------------------------------
    def _check_command(self, config: ContainerConfig, image: Image) -> None:
        command = config.cmd[0]
        path = bundle.environment(config)["PATH"]
        if "/" in command:
            return  # a path: the shell reports it if it is missing
        if not has_executable(image.rootfs, command, path):
            raise InvalidArgument(f'exec: "{command}": executable file not found in $PATH')

    async def start(self, ref: str) -> bool:
        """Start a container; False when it was running already."""
        container = self.find(ref)
        cid = container.config.container_id
        async with self._lock(cid):
            container = self._containers[cid]
            if container.running:
                return False
            image = self.images.get(container.config.image)
            self._check_command(container.config, image)
            self._check_ports(container.config.ports, but=cid)
            undo: list[Callable[[], Awaitable[None]]] = []
            try:
                await self._start(container, image, undo)
            except BaseException as exc:
                for step in reversed(undo):
                    try:
                        await step()
                    except FerryError as undo_exc:
                        log.warning(
                            "undo step failed", extra=kv(container=cid[:12], error=undo_exc)
                        )
                failed = ContainerState(status=Status.CREATED, error=str(exc))
                self._save(Container(container.config, failed))
                self._on_change()
                raise
        return True

    async def _start(
        self, container: Container, image: Image, undo: list[Callable[[], Awaitable[None]]]
    ) -> None:
        config = container.config
        cid = config.container_id
        netns_name = f"{self._prefix}c-{config.short_id}"
        path = nsfs.netns_path(netns_name)
        await self._kernel.run(make_sandbox, netns_name)
        undo.append(functools.partial(self._kernel.run, remove_sandbox, netns_name))
        endpoints: list[AttachedEndpoint] = []
        for i, choice in enumerate(config.networks):
            attached = await self._attach(config, choice, path, f"eth{i}")
            endpoints.append(attached)
            undo.append(functools.partial(self._detach, attached, path))
        if self.gateway is not None and self._needs_egress(config):
            attached = await self.gateway.attach(
                path,
                f"eth{len(endpoints)}",
                default_route=not self._default_route_network(config),
            )
            endpoints.append(attached)
            undo.append(functools.partial(self._detach, attached, path))
        self._write_files(config, tuple(endpoints), image)
        self._containers[cid] = Container(
            config, replace(container.state, endpoints=tuple(endpoints), netns=netns_name)
        )
        if self.dns is not None:
            await self.dns.attach(cid, path)
            undo.append(functools.partial(self.dns.detach, cid))
        for hook in self.prepare:
            await hook(self._containers[cid], path)
        self._on_change()
        directory = self.store.dir(cid)
        self.store.exit_file(cid).unlink(missing_ok=True)
        shim = proc.spawn(
            bundle.shim_argv(path, directory / "init.sh", self.store.exit_file(cid), config.cmd),
            env=bundle.environment(config),
            log_path=self.store.log_path(cid),
            cwd=directory,
        )
        undo.append(functools.partial(_kill_shim, shim))
        init_pid = await self._find_init(shim)
        state = ContainerState(
            status=Status.RUNNING,
            shim_pid=shim.pid,
            shim_start=shim.start_time,
            pid=init_pid,
            pid_start=proc.start_time_of(init_pid) or 0 if init_pid else 0,
            started_at=now_iso(),
            netns=netns_name,
            endpoints=tuple(endpoints),
            restart_count=container.state.restart_count,
        )
        self._save(Container(config, state))
        self._on_change()  # the container is running now: published ports and local DNS follow
        self._watch(cid, shim)
        log.info("container started", extra=kv(name=config.name, id=config.short_id, pid=init_pid))

    def _needs_egress(self, config: ContainerConfig) -> bool:
        """The egress bridge: for published ports no local bridge network can take, and for a
        way out from overlays that are not internal, unless a local network gives one."""
        networks = [self._network(c.network) for c in config.networks]
        bridged = any(n.driver == Driver.BRIDGE for n in networks)
        if (config.ports or config.host_ports) and not bridged:
            return True
        if self._default_route_network(config):
            return False
        return any(n.driver == Driver.OVERLAY and not n.internal for n in networks)

    def _write_files(
        self, config: ContainerConfig, endpoints: tuple[AttachedEndpoint, ...], image: Image
    ) -> None:
        directory = self.store.dir(config.container_id)
        write_atomic(directory / "hosts", bundle.hosts_file(config, endpoints).encode(), 0o644)
        write_atomic(directory / "resolv.conf", bundle.resolv_conf().encode(), 0o644)
        write_atomic(directory / "hostname", f"{config.effective_hostname}\n".encode(), 0o644)
        script = bundle.init_script(config, directory, image.rootfs)
        write_atomic(directory / "init.sh", script.encode(), 0o755)

    async def _find_init(self, shim: proc.ProcRef) -> int:
        """The container's PID 1 as the host sees it: the shim's only child."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INIT_WAIT_S
        while loop.time() < deadline:
            children = proc.children_of(shim.pid)
            if children:
                return children[0]
            if not shim.alive():
                return 0  # it ended already; the exit watcher records how
            await asyncio.sleep(0.002)
        raise Unavailable("the container's process did not start in time")

    # exit ------------------------------------------------------------------------------------
    def _watch(self, cid: str, shim: proc.ProcRef) -> None:
        self._watchers[cid] = proc.ExitWatcher(shim, lambda _status: self._spawn(self._finish(cid)))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, cid: str) -> None:
        async with self._lock(cid):
            container = self._containers.get(cid)
            if container is None or not container.running:
                return
            self._watchers.pop(cid, None)
            code = self.store.read_exit_code(cid)
            await self._teardown(container)
            state = replace(
                container.state,
                status=Status.EXITED,
                exit_code=255 if code is None else code,
                finished_at=now_iso(),
                pid=0,
                pid_start=0,
                shim_pid=0,
                shim_start=0,
                netns="",
                endpoints=(),
            )
            self._save(Container(container.config, state))
            self._on_change()
            log.info("container exited", extra=kv(name=container.config.name, code=state.exit_code))
        for waiter in self._exit_waiters.pop(cid, []):
            if not waiter.done():
                waiter.set_result(state.exit_code)
        self.on_exit(self._containers.get(cid, container))
        if container.config.auto_remove:
            await self.remove(cid, force=True)

    async def _teardown(self, container: Container) -> None:
        cid = container.config.container_id
        if self.dns is not None:
            await self.dns.detach(cid)
        for attached in container.state.endpoints:
            try:
                await self._detach(attached, None)  # the namespace goes next, with what it holds
            except FerryError as exc:
                log.warning("endpoint teardown failed", extra=kv(ep=attached.ep_id[:12], error=exc))
        if container.state.netns:
            await self._kernel.run(remove_sandbox, container.state.netns)

    # stop / kill / remove --------------------------------------------------------------------
    def _init_ref(self, container: Container) -> proc.ProcRef:
        return proc.ProcRef(container.state.pid, container.state.pid_start)

    async def kill(self, ref: str, sig: int = signal.SIGKILL) -> None:
        container = self.find(ref)
        if not container.running:
            raise Conflict(f"Container {container.config.name} is not running")
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

    async def stop(
        self, ref: str, timeout_s: float | None = STOP_TIMEOUT_S, sig: int = signal.SIGTERM
    ) -> bool:
        """``sig`` (SIGTERM), then SIGKILL after ``timeout_s`` (None: wait without limit, as
        Docker does for a negative timeout); False when it was not running."""
        container = self.find(ref)
        cid = container.config.container_id
        if not container.running:
            return False
        exited = self._next_exit(cid)
        # PID 1 of a namespace ignores a signal it does not catch: then waiting is pointless.
        waits = timeout_s is None or timeout_s > 0
        if sig != signal.SIGKILL and waits and proc.catches(container.state.pid, sig):
            proc.signal_process(self._init_ref(container), sig)
            if await self._wait_done(exited, timeout_s):
                return True
        await self.kill(cid, signal.SIGKILL)
        if not await self._wait_done(exited, KILL_WAIT_S):
            raise Unavailable(f"container {container.config.name} did not stop")
        return True

    async def restart(
        self, ref: str, timeout_s: float | None = STOP_TIMEOUT_S, sig: int = signal.SIGTERM
    ) -> None:
        container = self.find(ref)
        await self.stop(container.config.container_id, timeout_s, sig)
        await self.start(container.config.container_id)

    async def remove(self, ref: str, force: bool = False) -> Container:
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
        async with self._lock(cid):
            if cid not in self._containers:
                return container  # removed meanwhile (--rm)
            self._containers.pop(cid, None)
            self.store.remove(cid)
        self._locks.pop(cid, None)
        self._on_change()
        return container

    def exit_future(self, ref: str, next_exit: bool = False) -> asyncio.Future[int]:
        """The exit code: now if it is not running (unless ``next_exit``), else when it ends.
        Registered at once, so an exit right after this call is not missed."""
        container = self.find(ref)
        if container.running or next_exit:
            return self._next_exit(container.config.container_id)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(container.state.exit_code)
        return done

    # network connect / disconnect ------------------------------------------------------------
    async def connect(self, ref: str, choice: NetworkChoice) -> None:
        container = self.find(ref)
        cid = container.config.container_id
        async with self._lock(cid):
            container = self._containers[cid]
            network = self._network(choice.network)
            known = {self._net_id(c.network) for c in container.config.networks}
            if network.net_id in known:
                raise Conflict(
                    f"endpoint with name {container.config.name} already exists in network "
                    f"{network.name}"
                )
            self._check_networks((choice,), (container.config.name, container.config.hostname))
            config = replace(container.config, networks=(*container.config.networks, choice))
            state = container.state
            if container.running:  # attached first: a failed attach leaves the config as it was
                used = {ep.ifname for ep in state.endpoints}
                ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
                attached = await self._attach(config, choice, nsfs.netns_path(state.netns), ifname)
                state = replace(state, endpoints=(*state.endpoints, attached))
                image = self.images.get(config.image)
                self._write_files(config, state.endpoints, image)
            self.store.save_config(config)
            self._save(Container(config, state))
        self._on_change()

    async def disconnect(self, ref: str, net_id: str) -> None:
        container = self.find(ref)
        cid = container.config.container_id
        async with self._lock(cid):
            container = self._containers[cid]
            keep = tuple(c for c in container.config.networks if self._net_id(c.network) != net_id)
            if len(keep) == len(container.config.networks):
                raise NotFound(f"container {container.config.name} is not connected to {net_id}")
            config = replace(container.config, networks=keep)
            self.store.save_config(config)
            state = container.state
            netns = nsfs.netns_path(state.netns) if state.netns else None
            for attached in [ep for ep in state.endpoints if ep.net_id == net_id]:
                await self._detach(attached, netns)
            state = replace(
                state, endpoints=tuple(e for e in state.endpoints if e.net_id != net_id)
            )
            self._save(Container(config, state))
        self._on_change()

    # restart of ferryd -----------------------------------------------------------------------
    async def restore(self) -> None:
        """Find the containers again: adopt running shims, finish those that ended meanwhile."""
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
                continue
            shim = proc.ProcRef(container.state.shim_pid, container.state.shim_start)
            if shim.alive():
                if self.dns is not None:
                    await self.dns.attach(cid, nsfs.netns_path(container.state.netns))
                self._watch(cid, shim)
                log.info("adopted running container", extra=kv(name=container.config.name))
            else:
                self._spawn(self._finish(cid))
        self._on_change()

    async def close(self) -> None:
        """ferryd stops: stop watching (containers keep running), let finishing work end."""
        for watcher in self._watchers.values():
            watcher.cancel()
        self._watchers.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
