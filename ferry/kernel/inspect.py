"""Read-only looks at what the kernel holds, for ``ferry doctor``: interfaces and addresses,
nftables tables as nft's own JSON, and a DNS question asked from inside a namespace.

Nothing here changes the kernel. Each call opens what it needs and closes it again (doctor is
not a hot path); netlink and nft run in a short-lived thread inside the namespace.
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.errors import KernelError
from ferry.kernel import proc
from ferry.kernel.netlink import Netlink
from ferry.kernel.nsfs import run_in_netns


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str
    mtu: int
    addrs: tuple[str, ...]  # IPv4 CIDRs
    master: str  # the bridge it is a port of, "" when none


def interfaces(netns: Path | None) -> list[Interface]:
    """Every link of the namespace with its IPv4 addresses (raises KernelError)."""
    with Netlink(netns) as nl:
        links = nl.links()
        addrs: dict[str, list[str]] = {}
        for name, cidr in nl.address_cidrs():
            addrs.setdefault(name, []).append(cidr)
    by_index = {link.index: link.name for link in links}
    return [
        Interface(
            link.name,
            link.mac,
            link.mtu,
            tuple(sorted(addrs.get(link.name, []))),
            by_index.get(link.master, "") if link.master else "",
        )
        for link in links
    ]


def vxlan_peers(netns: Path, dev: str) -> tuple[dict[str, str], dict[str, str]]:
    """(FDB MAC → VTEP, neighbour IP → MAC) of a VXLAN device (raises KernelError)."""
    with Netlink(netns) as nl:
        return nl.fdb_entries(dev), nl.neighbours(dev)


def nft_rules(netns: Path | None, family: str, table: str) -> list[list[dict[str, Any]]] | None:
    """The expression lists of every rule of one table, as nft's JSON gives them, each
    prefixed by ``{"chain": name}``; None when the table does not exist."""
    argv = ["nft", "-j", "list", "table", family, table]
    if netns is not None:
        argv = proc.in_netns_argv(netns, argv)
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    if result.returncode != 0:
        if "No such file or directory" in result.stderr:
            return None
        raise KernelError("nft list", table, None, result.stderr.strip()[:200])
    rules = []
    for item in json.loads(result.stdout).get("nftables", []):
        rule = item.get("rule")
        if rule is not None:
            rules.append([{"chain": rule.get("chain", "")}, *rule.get("expr", [])])
    return rules


def udp_exchange(
    netns: Path, addr: str, port: int, payload: bytes, timeout_s: float = 1.0
) -> bytes | None:
    """Send one datagram from inside ``netns`` and return the first reply (None: no reply
    within ``timeout_s``, or the port was closed)."""

    def ask() -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout_s)
            try:
                sock.sendto(payload, (addr, port))
                reply, _ = sock.recvfrom(65535)
            except OSError:  # a timeout, or ICMP port unreachable
                return None
            return reply

    return run_in_netns(netns, ask)
