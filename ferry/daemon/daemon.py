"""ferryd wired together: local API on a root-only unix socket, swarm membership, containers,
the host's network reconcilers and the embedded DNS; a clean stop on SIGTERM/SIGINT that leaves
containers and the data plane running (a restarted ferryd finds them again)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable

from aiohttp import web

from ferry.agent.agent import Agent
from ferry.agent.container_verbs import ContainerVerbs
from ferry.agent.containers import ContainerService
from ferry.agent.encryption import EncryptionAgent, NodeKey
from ferry.agent.guard import HostGuard
from ferry.agent.hostports import HostPorts, ingress_ports
from ferry.agent.ingress import IngressAgent
from ferry.agent.lb import VipBalancer
from ferry.agent.local_networks import LocalNetworks
from ferry.agent.logship import LogShipper
from ferry.agent.names import NameTable
from ferry.agent.networks import NetworkAgent
from ferry.agent.tasks import TaskAgent
from ferry.api.routes.container_verbs import ContainerVerbRoutes
from ferry.api.routes.containers import ContainerRoutes
from ferry.api.routes.doctor import DoctorRoutes
from ferry.api.routes.events import EventRoutes
from ferry.api.routes.images import ImageRoutes
from ferry.api.routes.networks import NetworkRoutes
from ferry.api.routes.secrets import SwarmObjectRoutes
from ferry.api.routes.services import ServiceRoutes
from ferry.api.routes.swarm import SwarmRoutes
from ferry.api.routes.system import SystemRoutes
from ferry.api.routes.system_df import DiskUsageRoutes
from ferry.api.routes.volumes import VolumeRoutes
from ferry.api.server import HTTP_LINE_BYTES, make_app
from ferry.daemon import resolvers
from ferry.daemon.config import DaemonConfig
from ferry.daemon.logs import kv
from ferry.daemon.swarm import SwarmController
from ferry.doctor.answer import DoctorAnswerer
from ferry.doctor.findings import Finding
from ferry.doctor.host import HostDoctor, HostParts
from ferry.errors import FerryError, KernelError, Unavailable
from ferry.kernel import sdnotify
from ferry.kernel.listeners import taken_ports
from ferry.kernel.netlink import Netlink
from ferry.kernel.thread import KernelThread
from ferry.kernel.wireguard import WireGuardDevice
from ferry.manager.store import keys
from ferry.model.container import Container, Status
from ferry.model.network import GWBRIDGE, Endpoint, EndpointKind, Network
from ferry.model.service import EndpointMode
from ferry.model.swarm_objects import Kind
from ferry.network.dns.server import DnsServer
from ferry.network.drivers.gwbridge import GatewayBridge
from ferry.network.drivers.overlay import OverlayDriver, Underlay
from ferry.network.encryption import tunnel_ifname
from ferry.runtime.execs import ExecService
from ferry.runtime.registry import make_image_store
from ferry.runtime.runner import make_runner
from ferry.runtime.store import ContainerStore

log = logging.getLogger("ferry.daemon")

DNS_HOLD_MAX_S = 5.0  # after a restart, how long questions may wait for the swarm's names


def underlay_of(addr: str, netns_prefix: str) -> Underlay:
    """The underlay as this host sees it: the MTU of the interface holding ``addr``."""
    with Netlink() as nl:
        devices = [dev for dev, ip in nl.host_addresses() if ip == addr]
        mtus = {link.name: link.mtu for link in nl.links()}
    if not devices:
        raise KernelError("find underlay", addr, None, "no interface holds this address")
    return Underlay(addr=addr, mtu=mtus[devices[0]], netns_prefix=netns_prefix)


def host_routes() -> list[tuple[str, str | None, int]]:
    with Netlink() as nl:
        return nl.routes()


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.kernel = KernelThread()
        self.swarm = SwarmController(config, self.kernel)
        self.network_agent: NetworkAgent | None = None
        self.task_agent: TaskAgent | None = None
        self.names = NameTable(
            self._endpoints,
            self._network_names,
            self._asker_networks,
            self._running_tasks,
            self._dnsrr_services,
        )
        self.balancer: VipBalancer | None = None
        self.shipper: LogShipper | None = None
        self.answerer: DoctorAnswerer | None = None
        self.ingress: IngressAgent | None = None
        self.local_networks = LocalNetworks(
            self.kernel, config.networks_dir, self._swarm_networks, self._local_users,
            egress_path=config.egress_path, pools=config.address_pools,
            bridge_mtu_bytes=config.mtu_bytes,
        )  # fmt: skip
        self.gateway = GatewayBridge(self.kernel, self.local_networks.egress_subnet)
        self.guard = HostGuard(
            self.kernel,
            advertise_addr=self._advertise_addr,
            macvlan_parents=self.local_networks.macvlan_parents,
            data_path_port=self.swarm.data_path_port,
        )
        self.local_networks.on_macvlan = self.guard.sync
        self.containers = ContainerService(
            netns_prefix=config.netns_prefix,
            kernel=self.kernel,
            images=make_image_store(config),
            store=ContainerStore(config.containers_dir),
            runner=make_runner(config),
            networks=lambda: self.network_agent,
            dns=None,
            on_change=self._names_changed,
            on_exit=self._container_exited,
            gateway=self.gateway,
            local=self.local_networks,
            ports_in_use=self._ports_in_use,
            data_path_port=self.swarm.data_path_port,
        )
        self.containers.health.on_change = self._container_exited  # a task runs once healthy
        self._restoring_swarm = False  # a member at start, until its agent runs (or fails to)
        self._leaving_swarm = False
        self._dns: DnsServer | None = None
        self.host_ports = HostPorts(
            self.kernel, self.containers.all, self._mesh_ports, config.state_dir / "mesh.json",
            self.swarm.data_path_port, egress=self.local_networks.egress_subnet,
        )  # fmt: skip
        self.node_key = NodeKey(config.state_dir)
        self.encryption: EncryptionAgent | None = None
        self._tell_swarm()
        self.execs = ExecService(self.containers.runner)
        self.app = make_app()
        SystemRoutes(config, self.swarm, self._counts).register(self.app)
        SwarmRoutes(self.swarm).register(self.app)
        NetworkRoutes(self.swarm, self.containers, self.local_networks).register(self.app)
        ContainerRoutes(self.containers, self.execs).register(self.app)
        images = ImageRoutes(self.containers)
        images.register(self.app)
        images.transfer.register(self.app)
        images.transfer.register_own(self.app)
        VolumeRoutes(self.containers).register(self.app)
        ContainerVerbRoutes(ContainerVerbs(self.containers)).register(self.app)
        ServiceRoutes(self.swarm, self.local_networks.find).register(self.app)
        for kind in (Kind.SECRET, Kind.CONFIG):
            SwarmObjectRoutes(kind, self.swarm).register(self.app)
        DoctorRoutes(self.swarm, self.examine).register(self.app)
        EventRoutes(self.containers.events).register(self.app)
        DiskUsageRoutes(self.containers).register(self.app)
        self.swarm.agent_started.append(self._agent_started)
        self.swarm.agent_stopping.append(self._agent_stopping)
        self.swarm.leaving.append(self._leaving)
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None

    # networks --------------------------------------------------------------------------------
    def _advertise_addr(self) -> str:
        membership = self.swarm.membership
        return membership.addr if membership is not None else ""

    def _swarm_networks(self) -> list[Network]:
        agent = self.swarm.agent
        return agent.view.networks() if agent is not None else []

    def _local_users(self, net_id: str) -> list[str]:
        return [
            c.config.name
            for c in self.containers.all()
            if c.running and any(ep.net_id == net_id for ep in c.state.endpoints)
        ]

    # names for DNS ---------------------------------------------------------------------------
    def _endpoints(self) -> list[Endpoint]:
        # swarm networks: what the network agent has programmed, not the live mirror (see
        # NetworkAgent); local networks: this host's running containers
        swarm = self.network_agent.programmed if self.network_agent is not None else []
        return swarm + self._local_endpoints()

    def _local_endpoints(self) -> list[Endpoint]:
        out = []
        for container in self.containers.all():
            if not container.running:
                continue
            config = container.config
            for ep in container.state.endpoints:
                if self.local_networks.get(ep.net_id) is not None:
                    out.append(
                        Endpoint(
                            ep_id=ep.ep_id,
                            net_id=ep.net_id,
                            node_id="",
                            ip=ep.ip,
                            mac=ep.mac,
                            kind=EndpointKind.CONTAINER,
                            owner_id=config.container_id,
                            name=config.name,
                            aliases=ep.aliases,
                            hostname=config.effective_hostname,
                        )
                    )
        return out

    def _network_names(self) -> dict[str, str]:
        names = {n.net_id: n.name for n in self._swarm_networks()}
        names.update({n.net_id: n.name for n in self.local_networks.all()})
        return names

    def _running_tasks(self) -> set[str]:
        agent = self.swarm.agent
        if agent is None:
            return set()
        return {t.task_id for t in agent.view.tasks() if t.serving}

    def _dnsrr_services(self) -> set[str]:
        agent = self.swarm.agent
        if agent is None:
            return set()
        return {
            s.spec.name for s in agent.view.services() if s.spec.endpoint_mode == EndpointMode.DNSRR
        }

    def _asker_networks(self, container_id: str) -> tuple[str, ...]:
        return self.containers.networks_of(container_id)

    def _names_changed(self) -> None:
        self.host_ports.changed()
        if self.balancer is not None:
            self.balancer.containers_changed()
        self.names.invalidate()
        if self.containers.dns is not None:
            self.containers.dns.invalidate()

    def _container_exited(self, container: Container) -> None:
        if self.task_agent is not None and container.config.task_id:
            self.task_agent.container_exited(container)

    def _ports_in_use(self) -> set[str]:
        """What a new ``run -p`` may not take: listeners here and the routing mesh's ports."""
        view = self.swarm.agent.view if self.swarm.agent else None
        mesh = {f"{proto}/{port}" for proto, port in ingress_ports(view)}
        return taken_ports() | mesh

    def _mesh_ports(self) -> set[tuple[str, int]] | None:
        """The routing mesh's ports this host forwards; None while not known (see HostPorts)."""
        agent = self.swarm.agent
        if agent is None or self._leaving_swarm:
            return None if self._restoring_swarm else set()
        ingress = self.ingress
        if not agent.mirror.synced or ingress is None or not ingress.settled:
            return None
        return ingress_ports(agent.view) if ingress.ready else set()

    # doctor ----------------------------------------------------------------------------------
    async def examine(self) -> list[Finding]:
        """This host against what must exist on it (``ferry doctor``)."""
        parts = HostParts(
            hostname=self.config.node_hostname,
            netns_prefix=self.config.netns_prefix,
            kernel=self.kernel,
            containers=self.containers,
            host_ports=self.host_ports,
            name_table=self._store_names,
            networks=self.network_agent,
            ingress=self.ingress,
            gateway=self.gateway,
        )
        return await HostDoctor(parts).examine()

    def _store_names(self) -> NameTable:
        """The names as the store has them now (the DNS server answers from what the network
        agent last programmed: doctor compares the two)."""
        agent = self.network_agent
        live = agent.view.live_endpoints(own=agent.node_id) if agent is not None else []
        return NameTable(
            lambda: live + self._local_endpoints(),
            self._network_names,
            self._asker_networks,
            self._running_tasks,
            self._dnsrr_services,
        )

    def _ports_report(self) -> list[str]:
        """What the routing mesh may not take on this node (sent with every heartbeat)."""
        return sorted(taken_ports() | self.containers.published())

    def _image_names(self) -> list[str]:
        return [tag for image in self.containers.images.all() for tag in image.repo_tags]

    def _counts(self) -> dict[str, int]:
        containers = self.containers.all()
        running = sum(1 for c in containers if c.state.status == Status.RUNNING)
        return {
            "containers": len(containers),
            "running": running,
            "stopped": len(containers) - running,
            "images": len(self.containers.images.all()),
        }

    # agent lifecycle -------------------------------------------------------------------------
    async def _agent_started(self, agent: Agent) -> None:
        self._leaving_swarm = False
        membership = self.swarm.membership
        assert membership is not None
        underlay = await self.kernel.run(underlay_of, membership.addr, self.config.netns_prefix)
        overlay = OverlayDriver(self.kernel, underlay, membership.data_path_port)
        run_dir = self.config.run_dir
        device = WireGuardDevice(
            tunnel_ifname(self.config.netns_prefix),
            state_file=run_dir / "wireguard.json",
            log_path=run_dir / "wireguard.log",
        )
        encryption = EncryptionAgent(
            self.kernel,
            agent.node_id,
            agent.view,
            self.node_key,
            device,
            underlay_mtu=underlay.mtu,
            sandboxes=overlay.existing_sandboxes,
            data_path_port=membership.data_path_port,
        )
        self.encryption = encryption
        encryption.start()

        def reconciled() -> None:
            self._names_changed()
            if self._dns is not None:
                self._dns.release()  # the swarm's names are known: answer
            encryption.mark()  # the last encrypted sandbox may just have gone

        # Names follow the network agent's passes (see NetworkAgent): a remote name resolves
        # once this host can reach it. Task and service changes need no kernel work first.
        self.network_agent = NetworkAgent(
            agent.node_id,
            agent.link,
            agent.view,
            overlay,
            self.containers.owner_ids,
            encryption=encryption,
            on_reconciled=reconciled,
        )
        self.network_agent.start()
        self.task_agent = TaskAgent(agent.node_id, agent.link, agent.view, self.containers)
        self.task_agent.start()
        self.shipper = LogShipper(agent.node_id, agent.link, agent.view, self.containers)
        self.shipper.start()
        self.answerer = DoctorAnswerer(
            agent.node_id, agent.link, agent.view, self.examine, self.config.node_hostname
        )
        self.answerer.start()
        self.ingress = IngressAgent(
            self.kernel,
            node_id=agent.node_id,
            view=agent.view,
            networks=self.network_agent,
            gateway=self.gateway,
            netns_prefix=self.config.netns_prefix,
            on_ready=self.host_ports.changed,
        )
        self.ingress.start()
        self.balancer = VipBalancer(self.kernel, agent.view, self.containers.all)
        self.containers.prepare.append(self.balancer.prepare)
        self.balancer.start()

        def changed(keys_changed: frozenset[str]) -> None:
            watched = (keys.TASKS, keys.SERVICES)
            if not keys_changed or any(k.startswith(watched) for k in keys_changed):
                self._names_changed()

        self._unsubscribe = agent.mirror.subscribe(changed)
        self.guard.follow(agent.view)

    async def _agent_stopping(self, _agent: Agent) -> None:
        self.guard.unfollow()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        ingress, self.ingress = self.ingress, None
        if ingress is not None:
            await ingress.stop()
        self.host_ports.changed()
        shipper, self.shipper = self.shipper, None
        if shipper is not None:
            await shipper.stop()
        answerer, self.answerer = self.answerer, None
        if answerer is not None:
            await answerer.stop()
        balancer, self.balancer = self.balancer, None
        if balancer is not None:
            self.containers.prepare.remove(balancer.prepare)
            await balancer.stop()
        task_agent, self.task_agent = self.task_agent, None
        if task_agent is not None:
            await task_agent.stop()
        network_agent, self.network_agent = self.network_agent, None
        if network_agent is not None:
            await network_agent.stop()
            await self.kernel.run(network_agent.overlay.close)
        encryption, self.encryption = self.encryption, None
        if encryption is not None:
            await encryption.stop()  # the tunnels stay: a restart must keep traffic flowing

    async def _leaving(self, _agent: Agent) -> None:
        """Leaving the swarm: containers on swarm networks stop, the overlays go away."""
        self._leaving_swarm = True
        self.host_ports.changed()
        self.guard.forget_swarm()
        for container in self.containers.all():
            swarm_endpoints = [
                ep
                for ep in container.state.endpoints
                if ep.net_id != GWBRIDGE and self.local_networks.get(ep.net_id) is None
            ]
            if container.running and swarm_endpoints:
                await self.containers.stop(container.config.container_id, timeout_s=0)
        if self.ingress is not None:
            await self.ingress.teardown()
        if self.network_agent is not None:
            await self.network_agent.remove_all()
        if self.encryption is not None:
            await self.kernel.run(self.encryption.teardown)

    def _tell_swarm(self) -> None:
        """What the swarm side reads of this node: what its heartbeats report, how a manager
        pins images, which devices are Ferry's own, where events go."""
        self.swarm.ports = self._ports_report
        self.swarm.wg_key = self.node_key.public
        self.swarm.events = self.containers.events
        self.swarm.images = self._image_names
        self.swarm.resolve_digest = self.containers.images.resolve_digest
        self.swarm.own_devices = self.local_networks.bridge_devices

    # run -------------------------------------------------------------------------------------
    def _claim_sockets(self) -> None:
        for path in self.config.socket_paths:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                continue
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)  # left behind by a ferryd that died
                continue
            finally:
                probe.close()
            raise Unavailable(f"another daemon already serves {path}")

    async def run(self) -> None:
        cfg = self.config
        for directory in (cfg.state_dir, cfg.run_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._claim_sockets()
        cfg.pid_path.write_text(str(os.getpid()))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        servers = resolvers.nameservers(resolvers.read_resolv_conf())
        upstreams = resolvers.reachable(servers, await self.kernel.run(host_routes))
        dns = DnsServer(self.names.lookup, self.names.reverse, upstreams)
        self.containers.dns = self._dns = dns
        if self.swarm.file.load() is not None:
            # A member: its containers' questions about swarm names wait for the first network
            # pass (bounded), instead of NXDOMAIN for names not known again yet.
            self._restoring_swarm = True
            dns.hold()
            loop.call_later(DNS_HOLD_MAX_S, dns.release)
        log.info("embedded DNS ready", extra=kv(upstreams=",".join(upstreams) or "none"))
        # Containers first: the agents that start next compare the cluster's wishes with the
        # local containers, and must not mistake "not loaded yet" for "gone".
        await self.containers.restore()
        self.host_ports.start()
        try:
            await self.swarm.restore()
        except FerryError as exc:
            # keep serving the local API so the operator can see the error and leave --force
            log.error("could not restore swarm membership", extra=kv(error=exc))
            dns.release()
        self._restoring_swarm = False
        self.host_ports.changed()
        self.guard.start()  # after the restore: it must know whether this host is a member
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            max_line_size=HTTP_LINE_BYTES,
            max_field_size=HTTP_LINE_BYTES,
        )
        await self._runner.setup()
        old_umask = os.umask(0o177)  # each socket is root-only from the moment it exists
        try:
            for path in cfg.socket_paths:
                await web.UnixSite(self._runner, str(path)).start()
        finally:
            os.umask(old_umask)
        sockets = ",".join(map(str, cfg.socket_paths))
        log.info("ferryd ready", extra=kv(socket=sockets, hostname=cfg.node_hostname))
        _tell_systemd(sdnotify.READY)
        await self._stop.wait()
        log.info("ferryd stopping")
        _tell_systemd(sdnotify.STOPPING)
        await self._runner.cleanup()
        await self.containers.close()
        await self.host_ports.stop()
        await self.guard.stop()  # before the agent stops: its tables stay as they are
        await dns.close()
        await self.swarm.shutdown()
        self.kernel.shutdown()
        for path in cfg.socket_paths:
            path.unlink(missing_ok=True)
        cfg.pid_path.unlink(missing_ok=True)
        log.info("ferryd stopped")


def _tell_systemd(state: str) -> None:
    """sd_notify ``state`` when systemd runs ferryd as a notify unit; a refused message is
    logged (systemd then times the start out and says so), never fatal to a serving ferryd."""
    try:
        sdnotify.notify(state)
    except KernelError as exc:
        log.error("could not tell systemd", extra=kv(state=state, error=exc))
