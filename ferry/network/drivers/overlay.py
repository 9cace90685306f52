"""The overlay driver: one VXLAN segment per network, one sandbox per network and host.

Design notes. What it programs, per host and overlay network (created lazily, when the first
local endpoint needs it, removed with the last):

    host netns                       sandbox netns <prefix>ov-<net>            container netns
    ───────────                      ───────────────────────────────            ───────────────
    UDP <port> socket ◀── vxlan0 (VNI, local <advertise addr>, nolearning, proxy)
    (the device is made here,        │ port of br0, learning off
     then moved into the sandbox)    br0 (gateway address) ── ve<ep> ═══════════ eth0 (IP, MAC)

- The VXLAN device is created in the host namespace so its UDP socket lives there, on the
  underlay, and is moved into the sandbox; every network on a host shares that one socket.
- Remote endpoints are programmed statically (see ``network.peers``): an FDB entry per MAC
  and a permanent neighbour entry per IP, so ARP is answered inside the sandbox (``proxy``) and
  nothing is flooded or learnt over the underlay: only unicast UDP to the swarm's data-path
  port crosses between hosts.
- The port is the swarm's (``swarm init --data-path-port``, 4789 by default), fixed for its
  life: every node learns it when it joins and keeps it in its membership file.
- MTU: the underlay's minus 50 (VXLAN + UDP + IP + Ethernet headers) on every hop, unless the
  network asks for one (``--opt mtu=N``); an encrypted network also leaves 80 for WireGuard.
- An encrypted network's VXLAN uses the data-path port + 1 (4790 by default,
  ``model.ports.encrypted_port``), which only ever travels inside WireGuard (see
  ``network.encryption``); everything else here is the same.
- Bridged frames skip netfilter in the sandbox (``bridge-nf-call-iptables=0``): there are no
  rules there, and conntrack on every bridged packet would cost throughput.

Cost per endpoint: one veth pair and a handful of netlink calls locally; two kernel entries on
every other host of the network. All netlink work runs on the kernel thread, which owns one
long-lived handle per sandbox (peer updates are a few hundred microseconds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ferry.daemon.logs import kv
from ferry.errors import FerryError, KernelError
from ferry.kernel import nsfs
from ferry.kernel.netlink import Netlink
from ferry.kernel.sandboxes import make_sandbox, remove_sandbox
from ferry.kernel.sysctl import write_sysctls
from ferry.kernel.thread import KernelThread
from ferry.model.network import Endpoint, Network
from ferry.model.ports import encrypted_port
from ferry.network.drivers.veth import Leg, plug
from ferry.network.encryption import WIREGUARD_OVERHEAD
from ferry.network.peers import Peer, PeerPlan, applied, plan_peers

log = logging.getLogger("ferry.overlay")

VXLAN_OVERHEAD = 50
BRIDGE = "br0"
VXLAN = "vxlan0"


@dataclass(frozen=True)
class Underlay:
    """What the overlay needs to know about this host's side of the underlay."""

    addr: str
    mtu: int
    netns_prefix: str


def veth_name(ep_id: str) -> str:
    return f"ve{ep_id[:11]}"


class OverlayDriver:
    def __init__(self, kernel: KernelThread, underlay: Underlay, data_path_port: int) -> None:
        """``data_path_port``: the swarm's VXLAN UDP port (encrypted networks use the next)."""
        self._kernel = kernel
        self.underlay = underlay
        self.data_path_port = data_path_port
        # Owned by the kernel thread, keyed by the sandbox's short id (what its name carries,
        # and all a restarted ferryd knows of a sandbox whose network is gone): sandbox handles
        # and what each sandbox holds of its peers.
        self._handles: dict[str, Netlink] = {}
        self._peers: dict[str, tuple[dict[str, str], dict[str, str]]] = {}

    # names -----------------------------------------------------------------------------------
    def sandbox_name(self, net_id: str) -> str:
        return f"{self.underlay.netns_prefix}ov-{net_id[:12]}"

    def sandbox_path(self, net_id: str) -> Path:
        return nsfs.netns_path(self.sandbox_name(net_id))

    def vxlan_port(self, network: Network) -> int:
        """The UDP port the network's VXLAN device sends to and listens on."""
        if network.encrypted:
            return encrypted_port(self.data_path_port)
        return self.data_path_port

    def mtu(self, network: Network) -> int:
        if network.mtu:
            return network.mtu
        if network.encrypted:
            return self.underlay.mtu - WIREGUARD_OVERHEAD - VXLAN_OVERHEAD
        return self.underlay.mtu - VXLAN_OVERHEAD

    def existing_sandboxes(self) -> list[str]:
        """Short network ids of the sandboxes found on this host (after a restart)."""
        prefix = f"{self.underlay.netns_prefix}ov-"
        return [name[len(prefix) :] for name in nsfs.list_netns(prefix)]

    # networks --------------------------------------------------------------------------------
    async def ensure_network(self, network: Network) -> None:
        await self._kernel.run(self._ensure_network, network)

    def _handle(self, net_id: str) -> Netlink:
        handle = self._handles.get(net_id[:12])
        if handle is None:
            handle = self._handles[net_id[:12]] = Netlink(self.sandbox_path(net_id))
        return handle

    def _ensure_network(self, network: Network) -> None:
        path = self.sandbox_path(network.net_id)
        if path.exists():
            try:
                handle = self._handle(network.net_id)
                if handle.index(VXLAN) is not None and handle.index(BRIDGE) is not None:
                    return
            except FerryError:
                pass
            log.warning("rebuilding a broken sandbox", extra=kv(network=network.name))
            self._remove_network(network.net_id)
        mtu = self.mtu(network)
        tmp = f"fvx{network.vni}"
        make_sandbox(self.sandbox_name(network.net_id))
        try:
            with Netlink() as host:
                host.delete_link(tmp)  # left by a crash between create and move
                host.add_vxlan(tmp, network.vni, self.underlay.addr, self.vxlan_port(network))
                host.move_to_netns(tmp, path)
            sandbox = self._handle(network.net_id)
            sandbox.set_link(tmp, rename=VXLAN)
            sandbox.add_bridge(BRIDGE)
            sandbox.set_link(BRIDGE, mtu=mtu)
            sandbox.set_link(VXLAN, master=BRIDGE, mtu=mtu)
            sandbox.set_bridge_port(VXLAN, learning=False)
            sandbox.add_address(BRIDGE, f"{network.gateway}/{network.prefixlen}")
            write_sysctls(path, {"net.bridge.bridge-nf-call-iptables": "0"})
            sandbox.set_link(VXLAN, up=True)
            sandbox.set_link(BRIDGE, up=True)
        except BaseException:
            self._remove_network(network.net_id)
            raise
        self._peers[network.net_id[:12]] = ({}, {})
        log.info(
            "overlay sandbox created", extra=kv(network=network.name, vni=network.vni, mtu=mtu)
        )

    async def plugged(self, net_id: str) -> set[str]:
        """Names of the endpoints' veths on the sandbox's bridge (empty without a sandbox)."""
        return await self._kernel.run(self._plugged, net_id)

    def _plugged(self, net_id: str) -> set[str]:
        if not self.sandbox_path(net_id).exists():
            return set()
        handle = self._handle(net_id)
        bridge = handle.index(BRIDGE)
        if bridge is None:
            return set()
        return {link.name for link in handle.links() if link.master == bridge} - {VXLAN}

    async def remove_network(self, net_id: str) -> None:
        await self._kernel.run(self._remove_network, net_id)

    def _remove_network(self, net_id: str) -> None:
        handle = self._handles.pop(net_id[:12], None)
        self._peers.pop(net_id[:12], None)
        if handle is not None:
            handle.close()
        try:
            remove_sandbox(self.sandbox_name(net_id))
        except FerryError as exc:
            log.warning("could not empty a sandbox", extra=kv(net=net_id[:12], error=exc))

    # endpoints -------------------------------------------------------------------------------
    async def ensure_endpoint(
        self, network: Network, endpoint: Endpoint, container_netns: Path, ifname: str
    ) -> None:
        await self._kernel.run(self._ensure_endpoint, network, endpoint, container_netns, ifname)

    def _ensure_endpoint(
        self, network: Network, endpoint: Endpoint, container_netns: Path, ifname: str
    ) -> None:
        leg = Leg(
            veth_name(endpoint.ep_id), ifname, endpoint.mac,
            f"{endpoint.ip}/{network.prefixlen}", BRIDGE, mtu=self.mtu(network),
        )  # fmt: skip
        plug(self._handle(network.net_id), container_netns, leg)

    async def remove_endpoint(self, net_id: str, ep_id: str) -> None:
        await self._kernel.run(self._remove_endpoint, net_id, ep_id)

    def _remove_endpoint(self, net_id: str, ep_id: str) -> None:
        if not self.sandbox_path(net_id).exists():
            return
        try:
            self._handle(net_id).delete_link(veth_name(ep_id))
        except KernelError as exc:
            log.warning("could not remove an endpoint's veth", extra=kv(ep=ep_id[:12], error=exc))

    # peers -----------------------------------------------------------------------------------
    async def set_peers(self, net_id: str, peers: frozenset[Peer]) -> PeerPlan:
        """Make the sandbox know exactly ``peers`` (the full desired set, never a delta)."""
        return await self._kernel.run(self._set_peers, net_id, peers)

    def _set_peers(self, net_id: str, peers: frozenset[Peer]) -> PeerPlan:
        if not self.sandbox_path(net_id).exists():
            return PeerPlan()
        sandbox = self._handle(net_id)
        state = self._peers.get(net_id[:12])
        if state is None:  # first time since start: read what the kernel holds
            state = (sandbox.fdb_entries(VXLAN), sandbox.neighbours(VXLAN))
        plan = plan_peers(peers, *state)
        if plan.empty:
            self._peers[net_id[:12]] = state
            return plan
        try:
            sandbox.program_peers(
                VXLAN,
                fdb_del=plan.fdb_del,
                neigh_del=plan.neigh_del,
                fdb_add=plan.fdb_add,
                neigh_add=plan.neigh_add,
            )
        except FerryError:
            self._peers.pop(net_id[:12], None)  # unknown state: dump it again next time
            raise
        self._peers[net_id[:12]] = applied(plan, *state)
        return plan

    def close(self) -> None:
        """Drop the sandbox handles (the kernel objects stay: a restart must keep traffic).
        Call it on the kernel thread, like every other handle operation."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
