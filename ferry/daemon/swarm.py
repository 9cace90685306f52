"""Swarm membership of this ferryd: init, join, leave, and restoring it after a restart.

One membership change at a time (a lock); each either completes or is rolled back, so a failed
init or join leaves the node outside any swarm with nothing half-made (no certificates, no etcd
data, no running member).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ferry import __version__
from ferry.agent.agent import Agent
from ferry.agent.joining import fetch_ca, request_join
from ferry.agent.link import ManagerLink, client_context
from ferry.aio import cancel_and_wait
from ferry.daemon.addrs import choose_advertise_addr, with_port
from ferry.daemon.cert_renewal import CertRenewal
from ferry.daemon.config import DaemonConfig
from ferry.daemon.founding import found
from ferry.daemon.logs import kv
from ferry.daemon.manager_node import (
    LOCKED_LEAVE_MESSAGE,
    bootstrap_store,
    first_manager,
    force_new_cluster,
    leave_as_manager,
    restore_manager,
)
from ferry.daemon.membership import Membership, MembershipFile
from ferry.daemon.role_change import become_manager, become_worker, forget_manager_role
from ferry.daemon.trust import TrustFollower
from ferry.errors import (
    Conflict,
    FerryError,
    InvalidArgument,
    NoLeader,
    NotInSwarm,
    NotManager,
    SwarmLocked,
)
from ferry.events import EventBus
from ferry.kernel import host
from ferry.kernel.netlink import Netlink
from ferry.kernel.thread import KernelThread
from ferry.manager import ca, sealing
from ferry.manager.cluster_api import PORT
from ferry.manager.etcd_member import EtcdConfig
from ferry.manager.manager import Manager, StoreMemberRemoved
from ferry.manager.pinning import DigestResolver, no_registry
from ferry.manager.swarm_events import SwarmEvents
from ferry.manager.tokens import parse_token
from ferry.manager.vault import Vault
from ferry.manager.wire import JoinRequest, JoinResponse
from ferry.model.cluster import DEFAULT_POOL, DEFAULT_SUBNET_SIZE
from ferry.model.ids import new_object_id
from ferry.model.network import GWBRIDGE, NetworkRequest
from ferry.model.node import Availability, Role
from ferry.model.ports import check_data_path_port

log = logging.getLogger("ferry.swarm")

ROLE_RETRY_S = 10.0

AgentHook = Callable[[Agent], Awaitable[None]]


@dataclass(frozen=True)
class InitOptions:
    advertise_addr: str = ""
    listen_addr: str = f"0.0.0.0:{PORT}"
    default_pool: str = DEFAULT_POOL
    subnet_size: int = DEFAULT_SUBNET_SIZE
    availability: str = "active"
    autolock: bool = False
    force_new_cluster: bool = False
    data_path_port: int = 0  # --data-path-port (checked); 0: daemon.json's, else 4789


class SwarmController:
    def __init__(self, config: DaemonConfig, kernel: KernelThread) -> None:
        self.config = config
        self.kernel = kernel
        self.file = MembershipFile(config.state_dir)
        self.membership: Membership | None = None
        self.manager: Manager | None = None
        self.agent: Agent | None = None
        self._lock = asyncio.Lock()
        self.agent_started: list[AgentHook] = []
        self.agent_stopping: list[AgentHook] = []
        self.leaving: list[AgentHook] = []  # before a leave tears the agent down (not on restart)
        self.images: Callable[[], list[str]] = list  # what this node can run (heartbeats say)
        # the image store's resolver: a manager pins service images to registry digests
        self.resolve_digest: DigestResolver = no_registry
        self.ports: Callable[[], list[str]] = list  # host ports in use here (heartbeats say)
        self.wg_key: Callable[[], str] = str  # this node's WireGuard public key (heartbeats say)
        self.events: EventBus | None = None  # the daemon's: a manager publishes swarm events
        # Ferry's own bridges (local networks): never the address a node advertises
        self.own_devices: Callable[[], set[str]] = set
        self._role_task: asyncio.Task[None] | None = None
        self._renewal: CertRenewal | None = None
        # a root CA rotation's asks, followed (daemon/trust.py)
        self._trust = TrustFollower(
            self.file.certs, self._renew_now, self._certificate_renewed, self._lock
        )
        self._role_retry_at = 0.0

    # access ----------------------------------------------------------------------------------
    def require_member(self) -> tuple[Membership, Agent]:
        if self.membership is None or self.agent is None:
            raise NotInSwarm()
        return self.membership, self.agent

    def require_manager(self) -> Manager:
        """This node's manager, answering for the swarm: raises NotInSwarm, NotManager,
        SwarmLocked while it is locked (as Docker's every management call is), or NoLeader while
        its store has no majority (what it holds may be stale)."""
        self.require_member()
        if self.manager is None:
            raise NotManager()
        if self.manager.locked:
            raise SwarmLocked()
        if not self.manager.quorum.has_quorum:
            raise NoLeader()
        return self.manager

    def data_path_port(self) -> int:
        """The VXLAN UDP port of this node's swarm; outside a swarm, the one it would init
        with (daemon.json ``data-path-port``, else 4789)."""
        membership = self.membership
        if membership is not None:
            return membership.data_path_port
        return self.config.default_data_path_port

    @property
    def locked(self) -> bool:
        return self.manager is not None and self.manager.locked

    # lifecycle -------------------------------------------------------------------------------
    async def restore(self) -> None:
        membership = self.file.load()
        if membership is None:
            return
        self.membership = membership
        asked = self.config.data_path_port
        if asked and asked != membership.data_path_port:  # fixed at swarm init, as Docker's
            log.warning(
                "daemon.json's data-path-port is not this swarm's: the swarm's is used",
                extra=kv(swarm=membership.data_path_port, daemon_json=asked,
                         fix="remove the key or set it to the swarm's port"),
            )  # fmt: skip
        if membership.role == Role.MANAGER:
            try:
                manager = await restore_manager(
                    self.config, self.file.certs, membership, self.resolve_digest
                )
            except StoreMemberRemoved:
                membership = self.membership = forget_manager_role(self, membership)
            except FerryError as exc:
                # e.g. a manager lost while the others formed a new cluster without it: its
                # agent still reports in and learns its role (a worker, after a recovery)
                log.error("could not run this node's manager", extra=kv(error=exc))
            else:
                await self._manager_started(manager)
        await self._start_agent(membership)
        log.info(
            "swarm membership restored", extra=kv(node=membership.node_id, role=membership.role)
        )

    async def shutdown(self) -> None:
        await cancel_and_wait([self._role_task])
        await self._stop_agent()
        if self.manager is not None:
            await self.manager.stop()
            self.manager = None

    async def _manager_started(self, manager: Manager) -> None:
        self.manager = manager
        if self.events is not None:  # docker events: every change of the swarm, whoever made it
            publisher = SwarmEvents(manager.view, self.events.publish)
            manager.mirror.subscribe(publisher.changed)
            publisher.changed(frozenset())  # the baseline: what is there already is not news

    async def _start_agent(self, membership: Membership) -> None:
        managers = membership.managers or [with_port(membership.addr, PORT)]
        agent = Agent(
            membership.node_id,
            self.file.certs,
            managers,
            self._managers_changed,
            on_role=self._role_wanted,
            images=self.images,
            ports=self.ports,
            wg_key=self.wg_key,
            tls=self._trust.report,
            on_tls=self._trust.wanted,
        )
        await agent.start()
        self.agent = agent

        async def renew(body: dict[str, Any]) -> dict[str, Any]:
            reply: dict[str, Any] = await agent.link.call("POST", "/v1/renew", body)
            return reply

        self._renewal = CertRenewal(self.file.certs, renew, self._certificate_renewed, self._lock)
        self._renewal.start()
        for hook in self.agent_started:
            await hook(agent)

    async def _certificate_renewed(self) -> None:
        if self.agent is not None:
            await self.agent.reload_certificate()
        if self.manager is not None:
            self.manager.reload_certificate()

    async def _renew_now(self) -> bool:
        if self._renewal is None:
            return False
        return await self._renewal.step(force=True)

    async def _stop_agent(self) -> None:
        await self._trust.stop()
        if self._renewal is not None:
            await self._renewal.stop()
            self._renewal = None
        agent, self.agent = self.agent, None
        if agent is None:
            return
        for hook in self.agent_stopping:
            await hook(agent)
        await agent.stop()

    def _role_wanted(self, role: str) -> None:
        """The heartbeat says which role this node is to have: take it if it is another
        (role_change.py), one change at a time, a failed one again after ROLE_RETRY_S."""
        membership = self.membership
        if membership is None or role == membership.role.value:
            return
        if role not in (Role.MANAGER.value, Role.WORKER.value):
            return
        if self._role_task is not None and not self._role_task.done():
            return
        if time.monotonic() < self._role_retry_at:
            return
        self._role_task = asyncio.get_running_loop().create_task(self._take_role(Role(role)))

    async def _take_role(self, role: Role) -> None:
        try:
            async with self._lock:
                if self.membership is None or self.membership.role == role:
                    return
                if role == Role.MANAGER:
                    await become_manager(self)
                else:
                    await become_worker(self)
        except Exception as exc:  # a promotion that failed is undone; the next beat retries
            self._role_retry_at = time.monotonic() + ROLE_RETRY_S
            log.warning("could not change this node's role", extra=kv(role=role, error=exc))

    def _managers_changed(self, managers: list[str]) -> None:
        addrs = sorted(with_port(m, PORT) for m in managers)
        self.file.update_managers(addrs)
        # the file is read at the next start; /info (RemoteManagers) reads this copy now
        if self.membership is not None and self.membership.managers != addrs:
            self.membership = replace(self.membership, managers=addrs)

    async def _local_addresses(self) -> tuple[list[tuple[str, str]], str | None]:
        def read() -> tuple[list[tuple[str, str]], str | None]:
            with Netlink() as nl:
                return nl.host_addresses(), nl.default_route_dev()

        addresses, default_dev = await self.kernel.run(read)
        own = self.own_devices() | {GWBRIDGE}
        return [(dev, ip) for dev, ip in addresses if dev not in own], default_dev

    def _wipe(self) -> None:
        self.file.clear()
        shutil.rmtree(self.config.etcd_dir, ignore_errors=True)

    # init ------------------------------------------------------------------------------------
    async def init(self, options: InitOptions) -> str:
        async with self._lock:
            if self.membership is not None:
                if options.force_new_cluster and self.membership.role == Role.MANAGER:
                    await self._check_recovery(options, self.membership)
                    return await self._force_new_cluster(self.membership)
                raise Conflict(
                    'This node is already part of a swarm. Use "ferry swarm leave" to leave '
                    "this swarm and join another one."
                )
            addresses, default_dev = await self._local_addresses()
            addr = choose_advertise_addr(options.advertise_addr, addresses, default_dev)
            availability = _availability(options.availability)
            port = check_data_path_port(options.data_path_port or self.config.data_path_port)
            cluster_id, node_id = new_object_id(), new_object_id()
            self._wipe()
            founding = found(cluster_id, node_id, addr)
            certs = self.file.certs
            certs.write_node(
                founding.cluster_ca.cert_pem, founding.node_cert_pem, founding.node_key_pem
            )
            certs.write_store(
                founding.store_ca.cert_pem, founding.store_cert_pem, founding.store_key_pem
            )
            vault = Vault(certs.kek)
            vault.hold(founding.kek, persist=not options.autolock)
            etcd_config = self._etcd_config(node_id, addr, f"{node_id}=https://{addr}:2380", "new")
            manager = Manager(
                node_id, cluster_id, certs, etcd_config, vault, resolve=self.resolve_digest
            )
            membership = Membership(
                node_id, cluster_id, Role.MANAGER, addr, with_port(options.listen_addr, PORT),
                [with_port(addr, PORT)], data_path_port=port,
            )  # fmt: skip
            try:
                manager.etcd.save_config()
                await manager.start_store()
                node = first_manager(self.config.node_hostname, node_id, addr, availability)
                await bootstrap_store(
                    manager, founding, node, options.default_pool, options.subnet_size,
                    autolock=options.autolock, data_path_port=port,
                )  # fmt: skip
                self.file.save(membership)
                await manager.start_services(membership.listen_addr)
                # Docker makes the routing mesh's network at init: the first /24 of the pool
                await manager.networks.create(NetworkRequest(name="ingress", ingress=True))
            except BaseException:
                await manager.stop()
                self._wipe()
                raise
            self.membership = membership
            await self._manager_started(manager)
            await self._start_agent(membership)
            log.info("swarm initialised", extra=kv(node=node_id, cluster=cluster_id, addr=addr))
            return node_id

    async def _check_recovery(self, options: InitOptions, membership: Membership) -> None:
        """What ``--force-new-cluster`` cannot change, refused by name: the manager's address
        (an interface name or the same address pass), and autolock (``swarm update``)."""
        if options.advertise_addr:
            addresses, default_dev = await self._local_addresses()
            addr = choose_advertise_addr(options.advertise_addr, addresses, default_dev)
            if addr != membership.addr:
                raise InvalidArgument(
                    f"--force-new-cluster keeps this manager's address {membership.addr}: "
                    "leave out --advertise-addr"
                )
        if options.autolock:
            raise InvalidArgument(
                "--force-new-cluster keeps the swarm's autolock setting: leave out --autolock "
                "and change it afterwards with 'swarm update --autolock=true'"
            )
        asked = options.data_path_port
        if asked and check_data_path_port(asked) != membership.data_path_port:
            raise InvalidArgument(
                f"--force-new-cluster keeps the swarm's data path port "
                f"{membership.data_path_port}: leave out --data-path-port {asked}"
            )

    async def _force_new_cluster(self, membership: Membership) -> str:
        """Docker's recovery of a swarm that lost its majority, on one of its managers: this
        node's manager starts again as the only one, with everything the store holds."""
        manager, self.manager = self.manager, None
        if manager is not None:
            await manager.stop()
        manager = await force_new_cluster(
            self.config, self.file.certs, membership, self.resolve_digest
        )
        self.file.save(replace(membership, managers=[with_port(membership.addr, PORT)]))
        await self._manager_started(manager)
        if self.agent is None:  # a restore that failed left none
            await self._start_agent(membership)
        return membership.node_id

    def _etcd_config(self, node_id: str, addr: str, initial: str, state: str) -> EtcdConfig:
        return EtcdConfig(
            name=node_id,
            data_dir=self.config.etcd_dir,
            advertise_addr=addr,
            certs=self.file.certs,
            initial_cluster=initial,
            initial_state=state,
            binary=self.config.etcd_binary,
        )

    # join ------------------------------------------------------------------------------------
    async def join(
        self, remote_addrs: list[str], token_text: str, advertise_addr: str, listen_addr: str,
        availability: str,
    ) -> None:  # fmt: skip
        async with self._lock:
            if self.membership is not None:
                raise Conflict(
                    'This node is already part of a swarm. Use "ferry swarm leave" to leave '
                    "this swarm and join another one."
                )
            if not remote_addrs:
                raise InvalidArgument("join needs the address of a manager (ADDR[:2377])")
            token = parse_token(token_text)
            target = with_port(remote_addrs[0], PORT)
            ca_pem, local_ip = await fetch_ca(target, token)
            if advertise_addr:
                addresses, default_dev = await self._local_addresses()
                addr = choose_advertise_addr(advertise_addr, addresses, default_dev)
            else:
                addr = local_ip
            _availability(availability)
            key_pem, store_key_pem = ca.new_key_pem(), ca.new_key_pem()
            request = JoinRequest(
                token=token_text.strip(),
                csr_pem=ca.make_csr(key_pem).decode(),
                store_csr_pem=ca.make_csr(store_key_pem).decode(),
                hostname=self.config.node_hostname,
                advertise_addr=addr,
                availability=availability or "active",
                engine_version=__version__,
                ncpu=host.cpu_count(),
                memory_bytes=host.memory_bytes(),
                data_path_port=self.config.data_path_port,
            )
            response = await request_join(target, ca_pem, request)
            self._wipe()
            certs = self.file.certs
            certs.write_node(response.ca_pem.encode(), response.cert_pem.encode(), key_pem)
            role = Role(response.role)
            membership = Membership(
                response.node_id, response.cluster_id, role, response.addr,
                with_port(listen_addr or f"0.0.0.0:{PORT}", PORT),
                sorted(with_port(m, PORT) for m in response.managers) or [target],
                data_path_port=response.data_path_port,
            )  # fmt: skip
            if role == Role.MANAGER:
                await self.start_joined_manager(
                    response, membership, store_key_pem, target, self._wipe
                )
            else:
                self.file.save(membership)
            self.membership = membership
            await self._start_agent(membership)
            log.info("joined swarm", extra=kv(node=response.node_id, role=role, manager=target))

    async def start_joined_manager(
        self,
        response: JoinResponse,
        membership: Membership,
        store_key_pem: bytes,
        target: str,
        undo: Callable[[], None],
    ) -> None:
        """A manager join's second half (a promotion's too): the store certificate and the KEK
        it was given, its etcd member grown into the cluster, its manager services. If any step
        fails, the manager stops and ``undo`` puts this node's files back as they were."""
        assert response.etcd_initial_cluster is not None
        certs = self.file.certs
        certs.write_store(
            response.store_ca_pem.encode(), response.store_cert_pem.encode(), store_key_pem
        )
        vault = Vault(certs.kek)
        vault.hold(sealing.parse_key(response.unlock_key), persist=not response.autolock)
        config = self._etcd_config(
            response.node_id, response.addr, response.etcd_initial_cluster, "existing"
        )
        manager = Manager(
            response.node_id,
            response.cluster_id,
            certs,
            config,
            vault,
            resolve=self.resolve_digest,
        )
        try:
            manager.etcd.save_config()
            await manager.start_store(promote=functools.partial(self._promote, target))
            self.file.save(membership)
            await manager.start_services(membership.listen_addr)
        except BaseException:
            await manager.stop()
            undo()
            raise
        await self._manager_started(manager)

    async def _promote(self, manager_addr: str) -> None:
        """Ask a manager to make our fresh store member (a learner) a voting member."""
        certs = self.file.certs
        link = ManagerLink(client_context(certs.ca, certs.cert, certs.key), [manager_addr])
        try:
            await link.call("POST", "/v1/promote", {}, timeout_s=120.0)
        finally:
            await link.close()

    # unlock ----------------------------------------------------------------------------------
    async def unlock(self, key_text: str) -> None:
        """``swarm unlock``: give a locked manager the KEK. Conflict if it is not locked (as
        Docker's "swarm is not locked"); see ``Vault.unlock`` for a wrong key."""
        async with self._lock:
            self.require_member()
            manager = self.manager
            if manager is None or not manager.locked:
                raise Conflict("swarm is not locked")
            secrets, _ = await manager.keys.secrets()
            manager.vault.unlock(key_text, secrets)
            manager.upgrade.mark()  # it waits for the key, if the store is not up to date yet
            log.info("manager unlocked", extra=kv(node=manager.node_id))

    # leave -----------------------------------------------------------------------------------
    async def leave(self, force: bool) -> None:
        async with self._lock:
            membership, agent = self.require_member()
            if self.locked and not force:
                raise Conflict(LOCKED_LEAVE_MESSAGE)  # Docker's
            if self.manager is not None:
                await leave_as_manager(self.manager, membership, force)
            for hook in self.leaving:
                await hook(agent)
            try:
                await agent.link.call("POST", "/v1/leave", {})
            except FerryError as exc:
                # leaving is local first: the managers will see this node Down regardless
                log.warning("could not tell the managers we leave", extra=kv(error=exc))
            await self._stop_agent()
            if self.manager is not None:
                await self.manager.stop()
                self.manager = None
            self.membership = None
            self._wipe()
            log.info("left swarm", extra=kv(node=membership.node_id))


def _availability(value: str) -> Availability:
    try:
        return Availability(value or "active")
    except ValueError as exc:
        raise InvalidArgument(
            f"invalid availability {value!r}: use active, pause or drain"
        ) from exc
