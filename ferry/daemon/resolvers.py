"""Which of the host's DNS resolvers the embedded DNS may forward to.

Only resolvers the host can route to: in a lab there is no route out, so every resolver is
dropped and unknown names get an immediate REFUSED instead of a slow timeout. Loopback
resolvers (a stub like 127.0.0.53) are kept only when ferryd runs in the root namespace's
view of the world, i.e. when the host has a default route; a lab host has none.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path


def nameservers(resolv_conf: str) -> list[str]:
    out = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                out.append(str(ipaddress.IPv4Address(parts[1])))
            except ValueError:
                continue  # IPv6 resolvers: the embedded DNS forwards over IPv4 only
    return out


def reachable(servers: list[str], routes: list[tuple[str, str | None, int]]) -> list[str]:
    """Servers covered by a usable (not blackhole/unreachable) route of the main table."""
    usable = [ipaddress.ip_network(dst) for dst, _gw, kind in routes if kind == 1]
    has_default = any(n.prefixlen == 0 for n in usable)
    out = []
    for server in servers:
        addr = ipaddress.IPv4Address(server)
        if addr.is_loopback:
            if has_default:
                out.append(server)
        elif any(addr in net for net in usable):
            out.append(server)
    return out


def read_resolv_conf(path: Path = Path("/etc/resolv.conf")) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
