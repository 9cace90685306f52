"""Host rules for local bridge networks (pure: their nftables text).

Each bridge network is a Linux bridge on the host with the gateway address on it. Containers
on one bridge talk directly (plain bridging, unless ``enable_icc=false`` isolates its ports).
Traffic routed from one bridge network to another, or between a bridge network and the egress
bridge, is dropped, as Docker isolates its bridge networks; what leaves for anywhere else is
masqueraded, unless the network is internal (then nothing is routed in or out of it at all).
Connections from the host's loopback to a published port are masqueraded too, or the
container would answer 127.0.0.1 to itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from ferry.model.network import GWBRIDGE, Network
from ferry.network.local import bridge_device, masquerade

TABLE = "ferry_bridges"


def render(networks: Iterable[Network]) -> str:
    bridges = sorted(networks, key=lambda n: n.net_id)
    if not bridges:
        return ""
    devices = [bridge_device(n) for n in bridges]
    forward = [f'iifname "{GWBRIDGE}" oifname {{ {_set(devices)} }} drop']
    nat = []
    for net in bridges:
        dev = bridge_device(net)
        others = [d for d in devices if d != dev] + [GWBRIDGE]
        forward.append(f'iifname "{dev}" oifname {{ {_set(others)} }} drop')
        if net.internal:
            forward.append(f'iifname "{dev}" oifname != "{dev}" drop')
            forward.append(f'oifname "{dev}" iifname != "{dev}" drop')
            continue
        if masquerade(net):
            nat.append(f'ip saddr {net.subnet} oifname != "{dev}" masquerade')
        nat.append(f'oifname "{dev}" ip saddr 127.0.0.0/8 masquerade')
    body = "  chain forward {\n    type filter hook forward priority 0; policy accept;\n"
    body += "".join(f"    {rule}\n" for rule in forward) + "  }\n"
    body += "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
    body += "".join(f"    {rule}\n" for rule in nat) + "  }\n"
    return body


def _set(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)
