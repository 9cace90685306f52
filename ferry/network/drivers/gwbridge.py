"""The egress bridge: one ``ferry_gwbridge`` per host, Docker's docker_gwbridge.

Design notes. Containers on overlay networks reach the outside world through it: each gets an
extra interface on the bridge (its default route), and the host masquerades what leaves
172.18.0.0/16 through any other interface. Ports on the bridge are *isolated*: two containers,
whatever overlays they are on, can never talk through the bridge — only the host can reach
them there (that is how published ports arrive), so overlays stay isolated from each other.
The bridge is in the guarded interface group (``network.guard``): what containers send through
it never reaches Ferry's own ports on this host or on another node.
Addresses are allocated here, by the host alone (the lowest free one; the gateway and the
ingress sandbox have fixed ones), under a lock. The containers' state is the record of who
holds which: ``adopt`` takes it in after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ferry.kernel.netlink import Netlink
from ferry.kernel.nft import Nft, replace_table
from ferry.kernel.sysctl import write_sysctls
from ferry.kernel.thread import KernelThread
from ferry.model.container import AttachedEndpoint
from ferry.model.ids import new_hex_id
from ferry.model.network import GWBRIDGE, GWBRIDGE_GATEWAY, GWBRIDGE_SUBNET, INGRESS_SANDBOX_IP
from ferry.network import ipam
from ferry.network.drivers.veth import Leg, plug
from ferry.network.guard import CONTAINER_IFGROUP

log = logging.getLogger("ferry.gwbridge")

PREFIXLEN = 16
EGRESS_TABLE = "ferry_egress"
EGRESS_RULES = f"""  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr {GWBRIDGE_SUBNET} oifname != "{GWBRIDGE}" masquerade
    oifname "{GWBRIDGE}" ip saddr 127.0.0.0/8 masquerade
  }}
"""


def veth_name(ep_id: str) -> str:
    return f"gw{ep_id[:11]}"


class GatewayBridge:
    def __init__(self, kernel: KernelThread) -> None:
        self._kernel = kernel
        self._lock = asyncio.Lock()
        self._ready = False
        self._in_use: set[str] = set()

    def adopt(self, addresses: set[str]) -> None:
        """Addresses already held (read from the containers found at start-up)."""
        self._in_use |= addresses

    async def ensure(self) -> None:
        if not self._ready:
            await self._kernel.run(self._ensure)
            self._ready = True

    def _ensure(self) -> None:
        with Netlink() as host:
            if host.index(GWBRIDGE) is None:
                host.add_bridge(GWBRIDGE, group=CONTAINER_IFGROUP)
                log.info("egress bridge created", extra={"fields": {"subnet": GWBRIDGE_SUBNET}})
            host.add_address(GWBRIDGE, f"{GWBRIDGE_GATEWAY}/{PREFIXLEN}")
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
            nft.run(replace_table("ip", EGRESS_TABLE, EGRESS_RULES))

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
        async with self._lock:
            taken = self._in_use | {INGRESS_SANDBOX_IP}
            address = ip or ipam.next_free(GWBRIDGE_SUBNET, GWBRIDGE_GATEWAY, "", taken)
            attached = AttachedEndpoint(
                net_id=GWBRIDGE,
                net_name=GWBRIDGE,
                driver="bridge",
                ep_id=new_hex_id(),
                ip=address,
                prefixlen=PREFIXLEN,
                gateway=GWBRIDGE_GATEWAY,
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
            isolated=isolated, gateway=GWBRIDGE_GATEWAY if default_route else "",
        )  # fmt: skip
        with Netlink() as host:
            plug(host, netns, leg)

    async def detach(self, ep: AttachedEndpoint) -> None:
        await self._kernel.run(self._detach, ep.ep_id)
        self._in_use.discard(ep.ip)

    def _detach(self, ep_id: str) -> None:
        with Netlink() as host:
            host.delete_link(veth_name(ep_id))
