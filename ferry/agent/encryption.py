"""This host's side of encrypted overlays: its key, the WireGuard device, the routing rules that
send encrypted VXLAN through it, and one tunnel per other node (see ``network.encryption``).

Order is what keeps frames from ever crossing in clear: the rules and the inbound guard are in
place before any encrypted network's sandbox exists (``holding`` wraps its creation), and they go
only once no such sandbox is left. Between the two, a missing tunnel drops frames; it never
reroutes them. The device and its tunnels follow the node list on every pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ferry.daemon.files import write_atomic
from ferry.daemon.logs import kv
from ferry.errors import FerryError, Unavailable
from ferry.kernel import wireguard
from ferry.kernel.netlink import Netlink
from ferry.kernel.nft import KeptTable
from ferry.kernel.thread import KernelThread
from ferry.kernel.wireguard import WireGuardDevice
from ferry.manager.store import keys
from ferry.manager.store.view import ClusterView
from ferry.model.ports import WIREGUARD_PORT, encrypted_port
from ferry.network.encryption import (
    GUARD_TABLE,
    ROUTE_TABLE,
    RULE_PREF,
    WIREGUARD_OVERHEAD,
    desired_tunnels,
    guard_rules,
    plan_tunnels,
)
from ferry.reconcile import Reconciler

log = logging.getLogger("ferry.agent.encryption")


class NodeKey:
    """This node's WireGuard key pair: the private half in a 0600 file, made on first use."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "wireguard.key"
        self._public = ""
        self._failed = False

    def public(self) -> str:
        """The public key; "" (said once in the log) where wg(8) is missing: this node then
        cannot join encrypted networks, and everything else works as before."""
        if not self._public and not self._failed:
            try:
                if not self.path.exists():
                    key = wireguard.new_private_key()
                    write_atomic(self.path, (key + "\n").encode(), 0o600)
                self._public = wireguard.public_key(self.path.read_text().strip())
            except FerryError as exc:
                self._failed = True
                log.warning("no WireGuard key: encrypted networks unavailable", extra=kv(error=exc))
        return self._public


class EncryptionAgent(Reconciler):
    name = "encryption reconcile"
    watched = (keys.NODES, keys.NETWORKS, keys.ENDPOINTS)

    def __init__(
        self,
        kernel: KernelThread,
        node_id: str,
        view: ClusterView,
        key: NodeKey,
        device: WireGuardDevice,
        *,
        underlay_mtu: int,
        sandboxes: Callable[[], list[str]],
        data_path_port: int,
    ) -> None:
        super().__init__(view.mirror)
        self._kernel = kernel
        self.node_id = node_id
        self._view = view
        self._key = key
        self.device = device
        self._mtu = underlay_mtu - WIREGUARD_OVERHEAD
        self._sandboxes = sandboxes  # short ids of this host's overlay sandboxes
        self.port = encrypted_port(data_path_port)  # the UDP port of encrypted VXLAN
        self._guard = KeptTable("ip", GUARD_TABLE)
        self._lock = asyncio.Lock()
        self._active: bool | None = None  # None: not known yet (leftovers of an earlier run?)

    @property
    def mtu(self) -> int:
        """The MTU inside the tunnel, that encrypted networks' VXLAN rides on."""
        return self._mtu

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """Encryption in place, and kept for as long as the block runs (it makes a sandbox)."""
        async with self._lock:
            await self._kernel.run(self._ensure_base)
            yield

    async def reconcile(self) -> None:
        async with self._lock:
            if self._needed():
                await self._kernel.run(self._ensure_base)
                desired = desired_tunnels(self._view.nodes(), self.node_id)
                await self._kernel.run(self._program, desired)
            elif self._active is not False and not self._in_use():
                await self._kernel.run(self.teardown)

    def _needed(self) -> bool:
        encrypted = {n.net_id for n in self._view.networks() if n.encrypted}
        return any(
            e.node_id == self.node_id and e.net_id in encrypted for e in self._view.endpoints()
        )

    def _in_use(self) -> bool:
        """Whether an encrypted sandbox (or one whose network is not known) is still here."""
        networks = {n.net_id[:12]: n for n in self._view.networks()}
        return any(
            short not in networks or networks[short].encrypted for short in self._sandboxes()
        )

    # kernel thread ---------------------------------------------------------------------------
    def failed(self) -> None:
        self._guard.forget()
        self._active = None

    def _ensure_base(self) -> None:
        self._active = True
        ifname = self.device.ifname
        rules = guard_rules(ifname, self.port)
        if self._guard.stale(rules):
            self._guard.apply(rules)
        with Netlink() as nl:  # rules of another port (a swarm left) are replaced
            if not nl.udp_port_rules(self.port, ROUTE_TABLE, RULE_PREF):
                nl.add_udp_port_rules(self.port, ROUTE_TABLE, RULE_PREF)
        if not self.device.exists():
            if not self._key.public():
                raise Unavailable("this host has no WireGuard key (is wireguard-tools installed?)")
            self.device.create(self._mtu)
            self.device.configure(self._key.path, WIREGUARD_PORT)
            log.info("WireGuard device up", extra=kv(device=ifname, mtu=self._mtu))

    def _program(self, desired: frozenset[wireguard.Tunnel]) -> None:
        with Netlink() as nl:
            routes = {
                dst.split("/")[0] for dst in nl.table_routes(ROUTE_TABLE) if dst.endswith("/32")
            }
            plan = plan_tunnels(desired, self.device.tunnels(), routes)
            for key in plan.remove:
                self.device.remove_tunnel(key)
            for tunnel in plan.add:
                self.device.add_tunnel(tunnel, WIREGUARD_PORT)
            for addr in plan.routes_del:
                nl.delete_table_route(f"{addr}/32", ROUTE_TABLE)
            for addr in plan.routes_add:
                nl.replace_table_route(f"{addr}/32", self.device.ifname, ROUTE_TABLE)
        if not plan.empty:
            log.info(
                "tunnels programmed",
                extra=kv(added=len(plan.add), removed=len(plan.remove), peers=len(desired)),
            )

    def teardown(self) -> None:
        """Remove the device, the rules and the guard (idempotent; on the kernel thread)."""
        had_device = self.device.exists() or self.device.process() is not None
        self.device.delete()
        with Netlink() as nl:
            nl.delete_rules((RULE_PREF, RULE_PREF + 1))
            for dst in nl.table_routes(ROUTE_TABLE):
                nl.delete_table_route(dst, ROUTE_TABLE)
        if self._guard.stale(""):
            self._guard.apply("")
        self._active = False
        if had_device:
            log.info("WireGuard device removed", extra=kv(device=self.device.ifname))

    async def close(self) -> None:
        await self._kernel.run(self._guard.close)
