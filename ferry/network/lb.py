"""Service VIPs as nftables rules, per container (pure: plans and their text).

Design notes. Without IPVS, a VIP is a DNAT in the network namespace of every container on
the service's network: ``ip daddr VIP dnat to numgen inc mod N map {0: task1, 1: task2, …}`` in
the nat output chain. Round robin picks a running task for each new flow; conntrack pins the flow
to it for its lifetime, so replacing the rules (atomically, as one table) never breaks an
established connection to a task that still runs. A VIP with no running task rejects new
connections at once (a filter chain: nat chains cannot reject) instead of letting them time out.
All ports and both TCP and UDP pass: the VIP stands for the tasks, not for one port.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ferry.model.network import Endpoint, EndpointKind

TABLE = "ferry_vip"


@dataclass(frozen=True, order=True)
class VipBackends:
    vip: str
    backends: tuple[str, ...]


def plan_vips(
    networks: Iterable[str], endpoints: Iterable[Endpoint], running_tasks: set[str]
) -> list[VipBackends]:
    """The VIPs a container on ``networks`` must balance, each with its running tasks' IPs."""
    wanted = set(networks)
    vips: dict[tuple[str, str], str] = {}  # (net, service) -> vip
    backends: dict[tuple[str, str], list[str]] = {}
    for ep in endpoints:
        if ep.net_id not in wanted or not ep.service:
            continue
        if ep.kind == EndpointKind.VIP:
            vips[(ep.net_id, ep.service)] = ep.ip
        elif ep.kind == EndpointKind.TASK and ep.owner_id in running_tasks:
            backends.setdefault((ep.net_id, ep.service), []).append(ep.ip)
    return sorted(
        VipBackends(vip, tuple(sorted(backends.get(key, []), key=_ip_key)))
        for key, vip in vips.items()
    )


def _ip_key(ip: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ip.split("."))


def render(vips: Iterable[VipBackends]) -> str:
    """The body of table ``ip ferry_vip`` ('' when there is nothing to balance)."""
    nat, reject = [], []
    for vip in vips:
        if vip.backends:
            targets = ", ".join(f"{i} : {ip}" for i, ip in enumerate(vip.backends))
            count = len(vip.backends)
            nat.append(f"    ip daddr {vip.vip} dnat to numgen inc mod {count} map {{ {targets} }}")
        else:
            reject.append(f"    ip daddr {vip.vip} reject")
    if not nat and not reject:
        return ""
    body = "  chain vip_nat {\n    type nat hook output priority -100; policy accept;\n"
    body += "".join(line + "\n" for line in nat) + "  }\n"
    body += "  chain vip_reject {\n    type filter hook output priority 0; policy accept;\n"
    body += "".join(line + "\n" for line in reject) + "  }\n"
    return body
