"""How a container's networks are wired: local ones (bridge, macvlan) by this host, swarm
ones (overlays) through the network agent, and the egress bridge where a container needs a way
out or a published port no local bridge takes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ferry.agent.local_networks import LocalNetworks
from ferry.agent.networks import NetworkAgent
from ferry.errors import FerryError, InvalidArgument, NotFound
from ferry.model.container import AttachedEndpoint, ContainerConfig, NetworkChoice
from ferry.model.network import GWBRIDGE, Driver, Network
from ferry.model.rules import check_aliases
from ferry.network import ipam
from ferry.network.drivers.gwbridge import GatewayBridge


class ContainerNetworks:
    def __init__(
        self,
        networks: Callable[[], NetworkAgent | None],
        local: LocalNetworks | None,
        gateway: GatewayBridge | None,
    ) -> None:
        self._agent = networks
        self.local = local
        self.gateway = gateway

    def is_local(self, net_id: str) -> bool:
        return self.local is not None and self.local.get(net_id) is not None

    def agent(self, network: str) -> NetworkAgent:
        agent = self._agent()
        if agent is None:
            raise NotFound(
                f"network {network} not found: it is not a local network, and this node is not "
                "part of a swarm"
            )
        return agent

    def local_net(self, ref: str) -> Network | None:
        return self.local.find(ref) if self.local is not None else None

    def network(self, ref: str) -> Network:
        local = self.local_net(ref)
        return local if local is not None else self.agent(ref).resolve(ref)

    def network_ref(self, ref: str) -> tuple[str, str]:
        """(name, id) of a network a container names; (ref, "") once the network is gone."""
        try:
            network = self.network(ref)
        except FerryError:
            return ref, ""
        return network.name, network.net_id

    def net_id(self, ref: str) -> str:
        """A network's id, or the reference itself once the network is gone."""
        try:
            return self.network(ref).net_id
        except NotFound:
            return ref

    def default_route_network(self, config: ContainerConfig) -> str:
        """The first local network that leads outside gives the default route; the egress
        bridge gives it only to containers without one."""
        for choice in config.networks:
            local = self.local_net(choice.network)
            if local is not None and not local.internal:
                return local.net_id
        return ""

    async def attach(
        self, config: ContainerConfig, choice: NetworkChoice, netns: Path, ifname: str
    ) -> AttachedEndpoint:
        """Wire one network into the namespace (``detach`` undoes it)."""
        local = self.local_net(choice.network)
        if local is not None and self.local is not None:
            default = self.default_route_network(config) == local.net_id
            return await self.local.attach(choice, netns, ifname, default_route=default)
        agent = self.agent(choice.network)
        return await agent.attach(
            choice,
            netns,
            ifname,
            owner_id=config.container_id,
            name=config.name,
            hostname=config.effective_hostname,
        )

    async def detach(self, attached: AttachedEndpoint, netns: Path | None) -> None:
        if attached.net_id == GWBRIDGE:
            if self.gateway is not None:
                await self.gateway.detach(attached)
        elif self.local is not None and self.local.get(attached.net_id) is not None:
            await self.local.detach(attached, netns)
        else:
            agent = self._agent()
            if agent is not None:
                await agent.detach(attached)

    def check(self, choices: tuple[NetworkChoice, ...], names: tuple[str, ...] = ()) -> None:
        """Each network once, attachable, the address asked for inside it, and, on a node in
        a swarm, no DNS name (``names``: the container's name and hostname, plus each
        network's aliases) that is a service's, on local networks too: this host's DNS serves
        both (``check_names``). A task's own network choices (``ep_id``) are the managers'."""
        seen = set()
        for choice in choices:
            check_aliases(choice.aliases)
            network = self.network(choice.network)
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
            if not choice.ep_id:
                self.check_names(network, (*names, *choice.aliases))

    def check_names(self, network: Network, names: tuple[str, ...]) -> None:
        """Raises Forbidden for a name of ``names`` on ``network`` that a service of the swarm
        this node is in holds (nothing to check outside a swarm)."""
        agent = self._agent()
        if agent is not None:
            agent.check_names(network, names)

    def needs_egress(self, config: ContainerConfig) -> bool:
        """The egress bridge: for published ports no local bridge network can take, and for a
        way out from overlays that are not internal, unless a local network gives one."""
        networks = [self.network(c.network) for c in config.networks]
        bridged = any(n.driver == Driver.BRIDGE for n in networks)
        if (config.ports or config.host_ports) and not bridged:
            return True
        if self.default_route_network(config):
            return False
        return any(n.driver == Driver.OVERLAY and not n.internal for n in networks)
