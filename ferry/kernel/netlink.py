"""Links, addresses, routes, FDB and neighbour entries, through pyroute2.

Design notes: a ``Netlink`` handle wraps one rtnetlink socket opened *inside* its namespace (by
a short-lived setns'd thread, see nsfs), so the handle acts on that namespace from any thread
without forking (pyroute2's own ``netns=`` forks a child per socket, ~10 ms). pyroute2 0.9 binds
each handle to the thread that made it: create and use handles only on the kernel thread
(``KernelThread``). Every call costs one netlink round trip (~0.25 ms here).

Be aware: ``bridge fdb append`` on an existing unicast MAC silently changes nothing; this
module only ever uses ``replace``, which is idempotent and moves an entry.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink import NETLINK_ROUTE
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from ferry.errors import KernelError
from ferry.kernel.nsfs import run_in_netns


@dataclass(frozen=True)
class LinkInfo:
    name: str
    index: int
    kind: str
    master: int
    mtu: int
    mac: str
    up: bool


def _open_socket(netns: Path | None) -> socket.socket:
    def make() -> socket.socket:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)

    return make() if netns is None else run_in_netns(netns, make)


class Netlink:
    """rtnetlink in one namespace (``None``: the daemon's own)."""

    def __init__(self, netns: Path | None = None) -> None:
        self.netns = netns
        self._ipr = IPRoute(use_socket=_open_socket(netns))

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, what: str, obj: str, method: str, *args: Any, absent_ok: bool = False, **kwargs: Any
    ) -> Any:
        """``absent_ok``: removing what is already gone (ENOENT) is not an error."""
        try:
            return getattr(self._ipr, method)(*args, **kwargs)
        except NetlinkError as exc:
            if absent_ok and exc.code == errno.ENOENT:
                return None
            where = f"{obj} in {self.netns.name}" if self.netns else obj
            raise KernelError(what, where, exc.code, os.strerror(exc.code)) from exc

    # links -----------------------------------------------------------------------------------
    def index(self, name: str) -> int | None:
        found = self._ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    def must_index(self, name: str) -> int:
        idx = self.index(name)
        if idx is None:
            where = f" in {self.netns.name}" if self.netns else ""
            raise KernelError("lookup", f"link {name}{where}", 19, "no such device")
        return idx

    def links(self) -> list[LinkInfo]:
        out = []
        for msg in self._ipr.get_links():
            info = msg.get("IFLA_LINKINFO")
            out.append(
                LinkInfo(
                    name=msg.get("IFLA_IFNAME"),
                    index=msg["index"],
                    kind=info.get("IFLA_INFO_KIND") if info else "",
                    master=msg.get("IFLA_MASTER") or 0,
                    mtu=msg.get("IFLA_MTU"),
                    mac=msg.get("IFLA_ADDRESS") or "",
                    up=bool(msg["flags"] & 1),
                )
            )
        return out

    def add_veth(self, name: str, peer: str, peer_netns: Path | None = None) -> None:
        peer_spec: dict[str, Any] = {"ifname": peer}
        fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC) if peer_netns else None
        try:
            if fd is not None:
                peer_spec["net_ns_fd"] = fd
            self._call("add veth", name, "link", "add", ifname=name, kind="veth", peer=peer_spec)
        finally:
            if fd is not None:
                os.close(fd)

    def add_bridge(self, name: str, group: int = 0) -> None:
        """A bridge, born in interface group ``group`` (so rules matching the group hold for it
        from its first packet)."""
        self._call("add bridge", name, "link", "add", ifname=name, kind="bridge", group=group)

    def add_vxlan(self, name: str, vni: int, local: str, port: int) -> None:
        self._call(
            "add vxlan",
            name,
            "link",
            "add",
            ifname=name,
            kind="vxlan",
            vxlan_id=vni,
            vxlan_port=port,
            vxlan_local=local,
            vxlan_learning=0,
            vxlan_proxy=1,
        )

    def add_macvlan(self, name: str, parent: str, mode: str = "bridge") -> None:
        self._call(
            "add macvlan",
            name,
            "link",
            "add",
            ifname=name,
            kind="macvlan",
            link=self.must_index(parent),
            macvlan_mode=mode,
        )

    def add_link(self, name: str, kind: str) -> None:
        """A link of ``kind`` with no further settings (KernelError, e.g. EOPNOTSUPP, when this
        kernel has no such kind)."""
        self._call(f"add {kind}", name, "link", "add", ifname=name, kind=kind)

    def move_to_netns(self, name: str, netns: Path) -> None:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._call("move", name, "link", "set", index=self.must_index(name), net_ns_fd=fd)
        finally:
            os.close(fd)

    def set_link(
        self,
        name: str,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        master: str | None = None,
        mac: str | None = None,
        rename: str | None = None,
        group: int | None = None,
    ) -> None:
        attrs: dict[str, Any] = {}
        if group is not None:
            attrs["group"] = group
        if mtu is not None:
            attrs["mtu"] = mtu
        if master is not None:
            attrs["master"] = self.must_index(master)
        if mac is not None:
            attrs["address"] = mac
        if rename is not None:
            attrs["ifname"] = rename
        idx = self.must_index(name)
        if attrs:
            self._call("set", name, "link", "set", index=idx, **attrs)
        if up is not None:
            self._call("set", name, "link", "set", index=idx, state="up" if up else "down")

    def set_bridge_port(
        self, name: str, *, learning: bool | None = None, isolated: bool | None = None
    ) -> None:
        attrs: dict[str, Any] = {}
        if learning is not None:
            attrs["learning"] = int(learning)
        if isolated is not None:
            attrs["isolated"] = int(isolated)
        self._call("set bridge port", name, "brport", "set", index=self.must_index(name), **attrs)

    def delete_link(self, name: str) -> bool:
        """Delete a link if it exists; True when something was deleted."""
        idx = self.index(name)
        if idx is None:
            return False
        try:
            self._ipr.link("del", index=idx)
        except NetlinkError as exc:
            if exc.code == 19:  # gone meanwhile (a veth whose peer was deleted)
                return False
            raise KernelError("delete", f"link {name}", exc.code, os.strerror(exc.code)) from exc
        return True

    # addresses and routes --------------------------------------------------------------------
    def add_address(self, name: str, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        self._call(
            "add address",
            f"{cidr} on {name}",
            "addr",
            "replace",
            index=self.must_index(name),
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
        )

    def host_addresses(self) -> list[tuple[str, str]]:
        """(interface, IPv4 address) of every address in this namespace."""
        names = {link.index: link.name for link in self.links()}
        return [
            (names.get(m["index"], "?"), m.get("IFA_ADDRESS"))
            for m in self._ipr.get_addr(family=socket.AF_INET)
        ]

    def address_cidrs(self) -> list[tuple[str, str]]:
        """(interface, IPv4 address/prefix length) of every address in this namespace."""
        names = {link.index: link.name for link in self.links()}
        return [
            (names.get(m["index"], "?"), f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}")
            for m in self._ipr.get_addr(family=socket.AF_INET)
        ]

    def default_route_dev(self) -> str | None:
        names = {link.index: link.name for link in self.links()}
        for msg in self._ipr.get_routes(family=socket.AF_INET, table=254):
            if not msg.get("RTA_DST") and msg["dst_len"] == 0 and msg.get("RTA_OIF"):
                return names.get(msg.get("RTA_OIF"))
        return None

    def replace_route(
        self,
        dst: str,
        *,
        gateway: str | None = None,
        dev: str | None = None,
        src: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"dst": dst}
        if gateway:
            kwargs["gateway"] = gateway
        if dev:
            kwargs["oif"] = self.must_index(dev)
        if src:
            kwargs["prefsrc"] = src
        self._call("add route", dst, "route", "replace", **kwargs)

    def add_blackhole(self, dst: str) -> None:
        self._call("add route", f"blackhole {dst}", "route", "replace", dst=dst, type="blackhole")

    def delete_route(self, dst: str, *, blackhole: bool = False) -> bool:
        kwargs: dict[str, Any] = {"dst": dst}
        if blackhole:
            kwargs["type"] = "blackhole"
        try:
            self._ipr.route("del", **kwargs)
        except NetlinkError as exc:
            if exc.code in (3, 2):  # ESRCH / ENOENT: already gone
                return False
            raise KernelError("delete route", dst, exc.code, os.strerror(exc.code)) from exc
        return True

    # policy routing: one UDP port's traffic through its own table --------------------------
    def udp_port_rules(self, port: int, table: int, pref: int) -> bool:
        """Whether rules ``pref`` (UDP to ``port``: look up ``table``) and ``pref + 1`` (UDP to
        ``port``: drop) are in place; when that table has no route to a destination, the packet
        is dropped rather than routed the ordinary way."""
        match = f"{port}:{port}"
        found = {
            (r.get("priority"), r.get("FRA_TABLE"), r["action"])
            for r in self._ipr.get_rules(family=socket.AF_INET)
            if r.get("FRA_IP_PROTO") == socket.IPPROTO_UDP and r.get("FRA_DPORT_RANGE") == match
        }
        return {(pref, table, 1), (pref + 1, 0, 6)} <= found  # FR_ACT_TO_TBL, FR_ACT_BLACKHOLE

    def add_udp_port_rules(self, port: int, table: int, pref: int) -> None:
        self.delete_rules((pref, pref + 1))
        common: dict[str, Any] = {"ip_proto": socket.IPPROTO_UDP, "dport_range": f"{port}:{port}"}
        self._call("add rule", f"udp {port}", "rule", "add", table=table, priority=pref, **common)
        self._call(
            "add rule", f"udp {port}", "rule", "add", priority=pref + 1,
            action="FR_ACT_BLACKHOLE", **common,
        )  # fmt: skip

    def delete_rules(self, prefs: Sequence[int]) -> None:
        for pref in prefs:
            self._call("delete rule", str(pref), "rule", "del", priority=pref, absent_ok=True)

    def table_routes(self, table: int) -> dict[str, int]:
        """Destination CIDR → output interface index, of the routes in ``table``."""
        out = {}
        for msg in self._ipr.get_routes(family=socket.AF_INET, table=table):
            if msg.get("RTA_TABLE") != table:
                continue
            dst = msg.get("RTA_DST")
            out[f"{dst}/{msg['dst_len']}" if dst else "0.0.0.0/0"] = msg.get("RTA_OIF") or 0
        return out

    def replace_table_route(self, dst: str, dev: str, table: int) -> None:
        self._call(
            "add route", f"{dst} table {table}", "route", "replace",
            dst=dst, oif=self.must_index(dev), table=table,
        )  # fmt: skip

    def delete_table_route(self, dst: str, table: int) -> None:
        self._call(
            "delete route", f"{dst} table {table}", "route", "del",
            dst=dst, table=table, absent_ok=True,
        )  # fmt: skip

    def routes(self) -> list[tuple[str, str | None, int]]:
        """(destination CIDR, gateway, route type) of the main table, IPv4."""
        out = []
        for msg in self._ipr.get_routes(family=socket.AF_INET, table=254):
            dst = msg.get("RTA_DST")
            prefix = f"{dst}/{msg['dst_len']}" if dst else "0.0.0.0/0"
            out.append((prefix, msg.get("RTA_GATEWAY"), msg["type"]))
        return out

    # FDB and neighbours (overlay peers) ------------------------------------------------------
    def fdb_entries(self, dev: str) -> dict[str, str]:
        """Static VXLAN FDB entries on ``dev``: MAC → remote VTEP address."""
        idx = self.must_index(dev)
        out = {}
        for msg in self._ipr.fdb("dump", ifindex=idx):
            dst = msg.get("NDA_DST")
            if dst and msg["flags"] & ndmsg.NTF_SELF and msg.get("NDA_LLADDR"):
                out[msg.get("NDA_LLADDR")] = dst
        return out

    def neighbours(self, dev: str) -> dict[str, str]:
        """Permanent IPv4 neighbour entries on ``dev``: IP → MAC."""
        idx = self.must_index(dev)
        return {
            msg.get("NDA_DST"): msg.get("NDA_LLADDR")
            for msg in self._ipr.neigh("dump", ifindex=idx, family=socket.AF_INET)
            if msg["state"] & ndmsg.NUD_PERMANENT and msg.get("NDA_LLADDR")
        }

    def program_peers(
        self,
        dev: str,
        *,
        fdb_del: Sequence[tuple[str, str]] = (),
        neigh_del: Sequence[str] = (),
        fdb_add: Sequence[tuple[str, str]] = (),
        neigh_add: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Change a VXLAN device's static peers in one go: FDB entries (MAC, remote VTEP) and
        permanent neighbours (IP, MAC), removals first; the device is looked up once. Removing
        what is already gone is not an error."""
        idx = self.must_index(dev)
        for mac, dst in fdb_del:
            self._call("fdb del", f"{mac} on {dev}", "fdb", "del", absent_ok=True, ifindex=idx,
                       lladdr=mac, dst=dst, flags=ndmsg.NTF_SELF)  # fmt: skip
        for ip in neigh_del:
            self._call("neigh del", f"{ip} on {dev}", "neigh", "del", absent_ok=True, dst=ip,
                       ifindex=idx)  # fmt: skip
        for mac, dst in fdb_add:
            self._call("fdb replace", f"{mac} dst {dst} on {dev}", "fdb", "replace",
                       ifindex=idx, lladdr=mac, dst=dst, flags=ndmsg.NTF_SELF,
                       state=ndmsg.NUD_PERMANENT)  # fmt: skip
        for ip, mac in neigh_add:
            self._call("neigh replace", f"{ip} on {dev}", "neigh", "replace", dst=ip,
                       lladdr=mac, ifindex=idx, state=ndmsg.NUD_PERMANENT)  # fmt: skip
