"""The egress bridge: one ``ferry_gwbridge`` per host, Docker's docker_gwbridge.

Design notes. Containers on overlay networks reach the outside world through it: each gets an
extra interface on the bridge (its default route), and the host masquerades what leaves the
bridge's subnet through any other interface. That subnet is the host's (``network.egress``:
taken once from the local address pools, 172.18.0.0/16 with Docker's defaults); the bridge
holds its first address, the ingress sandbox its second. daemon.json's ``mtu`` is not applied
here: as in dockerd, only the default bridge takes it; this bridge and its veths keep the
kernel's default (1500). Ports on the bridge are *isolated*: two containers, whatever overlays
they are on, can never talk through the bridge — only the host can reach them there (that is
how published ports arrive), so overlays stay isolated from each other. The bridge is in the
guarded interface group (``network.guard``): what containers send through it never reaches
Ferry's own ports on this host or on another node.
Addresses are allocated here, by the host alone (the lowest free one; the gateway and the
ingress sandbox have the subnet's first two), under a lock. The containers' state is the
record of who holds which: ``adopt`` takes it in after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from ferry.kernel.netlink import Netlink
from ferry.kernel.nft import Nft, replace_table
from ferry.kernel.sysctl import write_sysctls
from ferry.kernel.thread import KernelThread
from ferry.model.container import AttachedEndpoint
from ferry.model.ids import new_hex_id
from ferry.model.network import GWBRIDGE, EgressSubnet
from ferry.network import ipam
from ferry.network.drivers.veth import Leg, plug
from ferry.network.guard import CONTAINER_IFGROUP

log = logging.getLogger("ferry.gwbridge")

EGRESS_TABLE = "ferry_egress"


def egress_rules(egress: EgressSubnet) -> str:
    """The body of table ``ip ferry_egress``: what leaves the bridge's subnet by another
    interface is masqueraded (Docker's docker_gwbridge rule); so are loopback sources sent
    onto the bridge (published ports called on the host itself, ``route_localnet``)."""
    return f"""  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr {egress.subnet} oifname != "{GWBRIDGE}" masquerade
    oifname "{GWBRIDGE}" ip saddr 127.0.0.0/8 masquerade
  }}
"""


def veth_name(ep_id: str) -> str:
    return f"gw{ep_id[:11]}"


class GatewayBridge:
    def __init__(self, kernel: KernelThread, egress: Callable[[], EgressSubnet]) -> None:
        """``egress`` gives the host's egress subnet (``LocalNetworks.egress_subnet``)."""
        self._kernel = kernel
        self._egress = egress
        self._lock = asyncio.Lock()
        self._ready = False
        self._in_use: set[str] = set()

    def adopt(self, addresses: set[str]) -> None:
        """Addresses already held (read from the containers found at start-up)."""
        self._in_use |= addresses

    @property
    def egress(self) -> EgressSubnet:
        return self._egress()

    @property
    def ready(self) -> bool:
        """Whether this ferryd has made the bridge and its masquerade (when first needed)."""
        return self._ready

    async def ensure(self) -> None:
        if not self._ready:
            await self._kernel.run(self._ensure, self.egress)
            self._ready = True

    def _ensure(self, egress: EgressSubnet) -> None:
        with Netlink() as host:
            if host.index(GWBRIDGE) is None:
                host.add_bridge(GWBRIDGE, group=CONTAINER_IFGROUP)
                log.info("egress bridge created", extra={"fields": {"subnet": egress.subnet}})
            host.add_address(GWBRIDGE, f"{egress.gateway}/{egress.prefixlen}")
            # the group again: a bridge made by an earlier ferryd may lack it
            host.set_link(GWBRIDGE, group=CONTAINER_IFGROUP, up=True)
        # routing between the bridge and the underlay; loopback sources for published ports
        write_sysctls(
            None,
            {
                "net.ipv4.ip_forward": "1",
                f"net.ipv4.conf.{GWBRIDGE}.route_localnet": "1",
            },
        )
        with Nft() as nft:
            nft.run(replace_table("ip", EGRESS_TABLE, egress_rules(egress)))

    async def attach(
        self,
        netns: Path,
        ifname: str,
        ip: str = "",
        *,
        default_route: bool = True,
        isolated: bool = True,
    ) -> AttachedEndpoint:
        """Give the namespace an interface on the bridge (and, unless told not to, its default
        route). ``isolated``: its port reaches no other isolated port (every container's);
        only the ingress sandbox's is not, so a container calling a published port on its own
        node is bridged to the sandbox after the host's DNAT, and the reply comes back
        through the same translation (Docker's mesh answers that call too)."""
        await self.ensure()
        egress = self.egress
        async with self._lock:
            taken = self._in_use | {egress.sandbox_ip}
            address = ip or ipam.next_free(egress.subnet, egress.gateway, "", taken)
            attached = AttachedEndpoint(
                net_id=GWBRIDGE,
                net_name=GWBRIDGE,
                driver="bridge",
                ep_id=new_hex_id(),
                ip=address,
                prefixlen=egress.prefixlen,
                gateway=egress.gateway,
                mac=ipam.mac_for(address),
                ifname=ifname,
            )
            await self._kernel.run(self._attach, netns, attached, default_route, isolated)
            self._in_use.add(address)
        return attached

    def _attach(
        self, netns: Path, ep: AttachedEndpoint, default_route: bool, isolated: bool
    ) -> None:
        leg = Leg(
            veth_name(ep.ep_id), ep.ifname, ep.mac, f"{ep.ip}/{ep.prefixlen}", GWBRIDGE,
            isolated=isolated, gateway=ep.gateway if default_route else "",
        )  # fmt: skip
        with Netlink() as host:
            plug(host, netns, leg)

    async def detach(self, ep: AttachedEndpoint) -> None:
        await self._kernel.run(self._detach, ep.ep_id)
        self._in_use.discard(ep.ip)

    def _detach(self, ep_id: str) -> None:
        with Netlink() as host:
            host.delete_link(veth_name(ep_id))
