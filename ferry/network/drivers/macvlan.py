"""Macvlan networks in the kernel: each container gets a macvlan child of the parent interface
(bridge mode), moved into its namespace — its own MAC address on the LAN, no bridge, no NAT.

As with any macvlan, the host itself cannot reach its containers through the parent (the
kernel does not pass frames between a parent and its children); other machines on the LAN,
and containers on the same parent, can.
"""

from __future__ import annotations

from pathlib import Path

from ferry.kernel.netlink import Netlink
from ferry.kernel.thread import KernelThread
from ferry.model.container import AttachedEndpoint
from ferry.model.network import Network
from ferry.network.local import parent


def staging_name(ep_id: str) -> str:
    """The child's name on the host, for the moment between creating and moving it."""
    return f"mv{ep_id[:11]}"


class MacvlanDriver:
    def __init__(self, kernel: KernelThread) -> None:
        self._kernel = kernel

    async def attach(
        self, net: Network, ep: AttachedEndpoint, netns: Path, *, default_route: bool
    ) -> None:
        await self._kernel.run(self._attach, net, ep, netns, default_route)

    def _attach(self, net: Network, ep: AttachedEndpoint, netns: Path, default_route: bool) -> None:
        staged = staging_name(ep.ep_id)
        with Netlink() as host:
            host.delete_link(staged)
            host.add_macvlan(staged, parent(net))
            try:
                host.move_to_netns(staged, netns)
            except BaseException:
                host.delete_link(staged)
                raise
        with Netlink(netns) as inner:
            try:
                inner.set_link(staged, rename=ep.ifname, mac=ep.mac)
                inner.add_address(ep.ifname, f"{ep.ip}/{ep.prefixlen}")
                inner.set_link(ep.ifname, up=True)
                if default_route:
                    inner.replace_route("0.0.0.0/0", gateway=net.gateway)
            except BaseException:
                inner.delete_link(staged)
                inner.delete_link(ep.ifname)
                raise

    async def detach(self, ep: AttachedEndpoint, netns: Path | None) -> None:
        """Remove the child from a namespace that lives on (a container that is disconnected);
        a container's namespace takes its children with it when it goes."""
        if netns is not None:
            await self._kernel.run(self._detach, ep.ifname, netns)

    def _detach(self, ifname: str, netns: Path) -> None:
        if netns.exists():
            with Netlink(netns) as inner:
                inner.delete_link(ifname)
