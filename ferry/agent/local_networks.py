"""This host's local networks (bridge and macvlan): their records, addresses, and wiring.

Design notes. A local network needs no swarm and no manager: its record is a file in the
host's state directory (the one source of truth for it), written before any kernel object is
made and removed after they are gone, so a crash in between leaves a record whose bridge
``restore`` builds again, never a bridge nobody knows. Addresses are allocated here, under a
lock, as the egress bridge allocates its own: the containers' saved state says who holds which,
and ``restore`` takes that in after a restart. The egress bridge's subnet is decided here too,
from the same pools (``network.egress``): at ``restore``, after the default bridge, and kept
in its own record (``egress_path``) from then on. A macvlan network exists only once the host
guard covers its parent (``on_macvlan``, awaited): its containers are LAN hosts, and the guard's
egress hook on the parent is what keeps them off Ferry's ports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from ferry.daemon.files import write_atomic
from ferry.daemon.logs import kv
from ferry.errors import Conflict, Forbidden, NotFound, Unavailable
from ferry.kernel.netlink import Netlink
from ferry.kernel.thread import KernelThread
from ferry.model.codec import decode, encode
from ferry.model.container import (
    NETWORK_BRIDGE,
    PREDEFINED_NETWORKS,
    AttachedEndpoint,
    NetworkChoice,
)
from ferry.model.ids import lookup, new_hex_id
from ferry.model.network import (
    GWBRIDGE,
    MTU_OPTIONS,
    Driver,
    EgressSubnet,
    Network,
    NetworkRequest,
    network_names,
)
from ferry.model.times import now_iso
from ferry.network import ipam
from ferry.network.drivers.bridge import BridgeDriver
from ferry.network.drivers.macvlan import MacvlanDriver
from ferry.network.egress import (
    EgressChoice,
    EgressSource,
    clashes,
    from_pools,
    kept_egress,
    plan_egress,
)
from ferry.network.local import (
    BRIDGE_NAME_OPTION,
    LOCAL_POOLS,
    HostFacts,
    bridge_device,
    parent,
    plan_local_network,
)

log = logging.getLogger("ferry.local_networks")


DEFAULT_BRIDGE_DEVICE = "ferry0"  # Docker's docker0
DEFAULT_MTU_BYTES = 1500  # dockerd's --mtu default
MTU_OPTION = MTU_OPTIONS[1]  # com.docker.network.driver.mtu, the key Docker's inspect shows


def default_bridge_request(mtu_bytes: int = DEFAULT_MTU_BYTES) -> NetworkRequest:
    """Docker's default ``bridge`` network: the first free subnet of the local pools
    (172.17.0.0/16 where free), masquerade out, the network of every container run without
    --network; its MTU is daemon.json's ``mtu`` (1500 by default), shown as Docker shows it,
    ``com.docker.network.driver.mtu`` among its options."""
    return NetworkRequest(
        name=NETWORK_BRIDGE,
        driver=Driver.BRIDGE,
        options={BRIDGE_NAME_OPTION: DEFAULT_BRIDGE_DEVICE, MTU_OPTION: str(mtu_bytes)},
    )


def with_mtu(net: Network, mtu_bytes: int) -> Network:
    """``net`` (the default bridge) at ``mtu_bytes``: dockerd makes its default bridge anew
    at each start from its settings, so a changed ``mtu`` takes effect at the next start."""
    return dataclasses.replace(net, options={**net.options, MTU_OPTION: str(mtu_bytes)})


def host_facts() -> HostFacts:
    with Netlink() as nl:
        links = frozenset(link.name for link in nl.links())
        routes = tuple(dst for dst, _gw, _oif in nl.routes() if dst and dst != "0.0.0.0/0")
        addresses = tuple(nl.address_cidrs())
    return HostFacts(links=links, routes=routes, addresses=addresses)


class LocalNetworks:
    def __init__(
        self,
        kernel: KernelThread,
        directory: Path,
        swarm_networks: Callable[[], list[Network]],
        users: Callable[[str], list[str]],
        *,
        egress_path: Path,
        pools: tuple[tuple[str, int], ...] = LOCAL_POOLS,
        bridge_mtu_bytes: int = DEFAULT_MTU_BYTES,
    ) -> None:
        """``egress_path``: the record of the egress bridge's subnet (outside ``directory``,
        which holds only local networks' records)."""
        self._kernel = kernel
        self._egress_path = egress_path
        self._egress: EgressSubnet | None = None
        self._pools = pools  # daemon.json default-address-pools
        self._bridge_mtu_bytes = bridge_mtu_bytes  # daemon.json mtu
        # awaited when the set of macvlan parents changed (the host guard covers them)
        self.on_macvlan: Callable[[], Awaitable[None]] | None = None
        self._dir = directory
        self._swarm_networks = swarm_networks
        self._users = users  # net_id -> names of the running containers attached to it
        self._bridge = BridgeDriver(kernel)
        self._macvlan = MacvlanDriver(kernel)
        self._networks: dict[str, Network] = {}
        self._in_use: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()

    # records ---------------------------------------------------------------------------------
    def _path(self, net_id: str) -> Path:
        return self._dir / f"{net_id}.json"

    def all(self) -> list[Network]:
        return sorted(self._networks.values(), key=lambda n: n.name)

    def _bridges(self) -> list[Network]:
        return [n for n in self._networks.values() if n.driver == Driver.BRIDGE]

    def bridge_devices(self) -> set[str]:
        return {bridge_device(n) for n in self._bridges()}

    def macvlan_parents(self) -> set[str]:
        return {parent(n) for n in self._networks.values() if n.driver == Driver.MACVLAN}

    def get(self, net_id: str) -> Network | None:
        return self._networks.get(net_id)

    def find(self, ref: str) -> Network | None:
        return lookup(self._networks.values(), ref, network_names, "network")

    def resolve(self, ref: str) -> Network:
        net = self.find(ref)
        if net is None:
            raise NotFound(f"network {ref} not found")
        return net

    async def restore(self, held: Iterable[tuple[str, str]]) -> None:
        """Read the records, take in the addresses containers hold, rebuild what is missing."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in sorted(self._dir.glob("*.json")):
            net = decode(Network, path.read_bytes())
            if net.name == NETWORK_BRIDGE and net.mtu != self._bridge_mtu_bytes:
                net = with_mtu(net, self._bridge_mtu_bytes)
                write_atomic(path, encode(net))
            self._networks[net.net_id] = net
        for net_id, ip in held:
            self._in_use.setdefault(net_id, set()).add(ip)
        await self._bridge.apply(self._bridges())
        if self._networks:
            log.info("local networks restored", extra=kv(count=len(self._networks)))
        facts = await self._kernel.run(host_facts)
        kept = kept_egress(self._saved_egress(), facts.addresses_on(GWBRIDGE))
        if kept is not None:
            self._keep_egress(kept, facts)
        if self.find(NETWORK_BRIDGE) is None:
            await self.create(default_bridge_request(self._bridge_mtu_bytes), predefined=True)
        if kept is None:
            await self._take_egress()

    # the egress bridge's subnet --------------------------------------------------------------
    def egress_subnet(self) -> EgressSubnet:
        """The egress bridge's subnet on this host (decided by ``restore``)."""
        if self._egress is None:
            raise Unavailable("the egress bridge's subnet is not known yet: ferryd is starting")
        return self._egress

    def _saved_egress(self) -> EgressSubnet | None:
        if not self._egress_path.exists():
            return None
        return decode(EgressSubnet, self._egress_path.read_bytes())

    def _keep_egress(self, kept: EgressChoice, facts: HostFacts) -> None:
        """Use the subnet the host already has (stable across restarts and reboots)."""
        egress = self._egress = kept.egress
        if kept.source != EgressSource.RECORD:
            write_atomic(self._egress_path, encode(egress))
        if not from_pools(egress, self._pools):
            # a bridge never moves under its containers and the mesh: new pools reach new hosts
            log.warning(
                "egress bridge keeps its subnet, not one of default-address-pools: to move it, "
                f"leave the swarm, stop ferryd, delete {GWBRIDGE} and {self._egress_path}",
                extra=kv(subnet=egress.subnet, pools=_pools_text(self._pools)),
            )
        for route in clashes(egress, facts.routes):
            log.warning(
                "egress bridge's subnet overlaps a route of the host",
                extra=kv(subnet=egress.subnet, route=route),
            )
        log.info("egress bridge subnet", extra=kv(subnet=egress.subnet, source=kept.source.value))

    async def _take_egress(self) -> None:
        """A fresh host: the first free subnet of the pools, after every local network (the
        default bridge among them), recorded before anything uses it."""
        async with self._lock:
            facts = await self._kernel.run(host_facts)
            known = [*self._networks.values(), *self._swarm_networks()]
            choice = plan_egress(
                [n.subnet for n in known],
                facts.routes,
                [cidr for _, cidr in facts.addresses],
                self._pools,
            )
            write_atomic(self._egress_path, encode(choice.egress))
            self._egress = choice.egress
        log.info("egress bridge subnet", extra=kv(subnet=choice.egress.subnet, source="pools"))

    # create / remove -------------------------------------------------------------------------
    async def create(self, req: NetworkRequest, predefined: bool = False) -> Network:
        if req.name in PREDEFINED_NETWORKS and not predefined:
            # Docker's words for its own three
            raise Conflict(f"network with name {req.name} already exists")
        async with self._lock:
            facts = await self._kernel.run(host_facts)
            known = [*self._networks.values(), *self._swarm_networks()]
            created = now_iso()
            egress = self._egress.subnet if self._egress is not None else None
            net = plan_local_network(
                req, new_hex_id(), created, known, facts, egress=egress, pools=self._pools
            )
            write_atomic(self._path(net.net_id), encode(net))
            self._networks[net.net_id] = net
            try:
                if net.driver == Driver.BRIDGE:
                    await self._bridge.apply(self._bridges())
                elif self.on_macvlan is not None:
                    await self.on_macvlan()
            except BaseException:
                self._forget(net)
                if net.driver == Driver.BRIDGE:
                    await self._bridge.remove(net, self._bridges())
                raise
        log.info("local network created", extra=kv(name=net.name, driver=net.driver.value))
        return net

    async def remove(self, ref: str) -> Network:
        async with self._lock:
            net = self.resolve(ref)
            if net.name == NETWORK_BRIDGE:
                raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
            users = self._users(net.net_id)
            if users:
                raise Conflict(
                    f"error while removing network: network {net.name} id {net.net_id} has "
                    f"active endpoints ({', '.join(sorted(users))})"
                )
            self._forget(net)
            if net.driver == Driver.BRIDGE:
                await self._bridge.remove(net, self._bridges())
            elif self.on_macvlan is not None:
                await self.on_macvlan()
        log.info("local network removed", extra=kv(name=net.name))
        return net

    def _forget(self, net: Network) -> None:
        self._networks.pop(net.net_id, None)
        self._in_use.pop(net.net_id, None)
        self._path(net.net_id).unlink(missing_ok=True)

    # attach / detach -------------------------------------------------------------------------
    async def attach(
        self, choice: NetworkChoice, netns: Path, ifname: str, *, default_route: bool
    ) -> AttachedEndpoint:
        net = self.resolve(choice.network)
        async with self._lock:
            taken = self._in_use.setdefault(net.net_id, set())
            address = ipam.assign(net.subnet, net.gateway, net.ip_range, choice.ip, taken)
        attached = AttachedEndpoint(
            net_id=net.net_id,
            net_name=net.name,
            driver=net.driver.value,
            ep_id=new_hex_id(),
            ip=address,
            prefixlen=net.prefixlen,
            gateway=net.gateway,
            mac=ipam.mac_for(address),
            ifname=ifname,
            aliases=tuple(choice.aliases),
        )
        try:
            if net.driver == Driver.BRIDGE:
                await self._bridge.attach(net, attached, netns, default_route=default_route)
            else:
                await self._macvlan.attach(net, attached, netns, default_route=default_route)
        except BaseException:
            taken.discard(address)
            raise
        return attached

    async def detach(self, attached: AttachedEndpoint, netns: Path | None) -> None:
        if attached.driver == Driver.BRIDGE:
            await self._bridge.detach(attached)
        else:
            await self._macvlan.detach(attached, netns)
        self._in_use.get(attached.net_id, set()).discard(attached.ip)


def _pools_text(pools: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{pool} in /{size}s" for pool, size in pools)
