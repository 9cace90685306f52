"""Local bridge networks in the kernel: one Linux bridge per network on the host, a veth per
container, and one nftables table (``network.bridges``) for isolation and masquerade.

``apply`` is idempotent and takes the whole set of bridge networks: it is how a restarted
ferryd makes sure the bridges are there, and how a created or removed network reaches the
rules, which are replaced in one transaction (conntrack keeps established flows). Every bridge
is born in the guarded interface group (``network.guard``), so the host guard covers it
before its first container is plugged in.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ferry.kernel.netlink import Netlink
from ferry.kernel.nft import Nft, replace_table
from ferry.kernel.sysctl import write_sysctls
from ferry.kernel.thread import KernelThread
from ferry.model.container import AttachedEndpoint
from ferry.model.network import Network
from ferry.network import bridges
from ferry.network.drivers.veth import Leg, plug
from ferry.network.guard import CONTAINER_IFGROUP
from ferry.network.local import bridge_device, icc

log = logging.getLogger("ferry.bridge")


def veth_name(ep_id: str) -> str:
    return f"vb{ep_id[:11]}"


class BridgeDriver:
    def __init__(self, kernel: KernelThread) -> None:
        self._kernel = kernel

    async def apply(self, networks: list[Network]) -> None:
        await self._kernel.run(self._apply, networks)

    def _apply(self, networks: list[Network]) -> None:
        with Netlink() as host:
            for net in networks:
                dev = bridge_device(net)
                if host.index(dev) is None:
                    host.add_bridge(dev, group=CONTAINER_IFGROUP)
                    log.info("bridge created", extra={"fields": {"bridge": dev, "net": net.name}})
                host.add_address(dev, f"{net.gateway}/{net.prefixlen}")
                # the group again: a bridge made by an earlier ferryd may lack it
                host.set_link(dev, mtu=net.mtu or None, group=CONTAINER_IFGROUP, up=True)
        sysctls = {"net.ipv4.ip_forward": "1"}
        for net in networks:
            sysctls[f"net.ipv4.conf.{bridge_device(net)}.route_localnet"] = "1"
        write_sysctls(None, sysctls)
        with Nft() as nft:
            nft.run(replace_table("ip", bridges.TABLE, bridges.render(networks)))

    async def remove(self, net: Network, remaining: list[Network]) -> None:
        await self._kernel.run(self._remove, net, remaining)

    def _remove(self, net: Network, remaining: list[Network]) -> None:
        with Nft() as nft:
            nft.run(replace_table("ip", bridges.TABLE, bridges.render(remaining)))
        with Netlink() as host:
            host.delete_link(bridge_device(net))

    async def attach(
        self, net: Network, ep: AttachedEndpoint, netns: Path, *, default_route: bool
    ) -> None:
        await self._kernel.run(self._attach, net, ep, netns, default_route)

    def _attach(self, net: Network, ep: AttachedEndpoint, netns: Path, default_route: bool) -> None:
        leg = Leg(
            veth_name(ep.ep_id), ep.ifname, ep.mac, f"{ep.ip}/{ep.prefixlen}", bridge_device(net),
            mtu=net.mtu or None, isolated=not icc(net),
            gateway=net.gateway if default_route else "",
        )  # fmt: skip
        with Netlink() as host:
            plug(host, netns, leg)

    async def detach(self, ep: AttachedEndpoint) -> None:
        await self._kernel.run(self._detach, ep.ep_id)

    def _detach(self, ep_id: str) -> None:
        with Netlink() as host:
            host.delete_link(veth_name(ep_id))
