"""nftables rules in one comparable form, from both sides: what a plan asks for
(``network.lb``, ``network.ports``, the egress bridge's masquerade) and what nft's JSON
listing shows the kernel holds.

A rule becomes ``"<chain>: <matches> -> <action>"``, e.g.
``"vip_nat: ip daddr 10.0.0.5 -> numgen 10.0.0.3, 10.0.0.4"`` or
``"prerouting: fib daddr type local, tcp dport 8080 -> 172.18.0.2:8080"``. Only the shapes
Ferry writes are understood; anything else comes out verbatim (so it shows as a difference,
never silently as a match).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ferry.model.network import GWBRIDGE, EgressSubnet
from ferry.network.lb import VipBackends
from ferry.network.ports import HostForward, IngressPort

# the chains Ferry's tables use (network.lb, network.ports)
VIP_NAT, VIP_REJECT = "vip_nat", "vip_reject"
HOST_CHAINS = ("prerouting", "output")


def summary(chain: str, matches: Iterable[str], action: str) -> str:
    return f"{chain}: {', '.join(matches)} -> {action}"


# what the plans ask for -------------------------------------------------------------------------
def vip_rules(vips: Iterable[VipBackends]) -> set[str]:
    out = set()
    for vip in vips:
        if vip.backends:
            out.add(summary(VIP_NAT, [f"ip daddr {vip.vip}"], "numgen " + ", ".join(vip.backends)))
        else:
            out.add(summary(VIP_REJECT, [f"ip daddr {vip.vip}"], "reject"))
    return out


def host_rules(forwards: Iterable[HostForward]) -> set[str]:
    out = set()
    for f in forwards:
        where = f"ip daddr {f.host_ip}" if f.host_ip else "fib daddr type local"
        matches = [where, f"{f.protocol} dport {f.published}"]
        for chain in HOST_CHAINS:
            out.add(summary(chain, matches, f"{f.target_ip}:{f.target_port}"))
    return out


def ingress_rules(ports: Iterable[IngressPort]) -> set[str]:
    out = set()
    for port in ports:
        if port.backends:
            targets = ", ".join(f"{ip}:{port.target}" for ip in port.backends)
            out.add(
                summary(
                    "prerouting", [f"{port.protocol} dport {port.published}"], "numgen " + targets
                )
            )
    return out


def egress_rules(egress: EgressSubnet) -> set[str]:
    """Table ``ip ferry_egress`` (``drivers.gwbridge.egress_rules``): the masquerade of what
    leaves the host's egress subnet, and of loopback sources sent onto the bridge."""
    return {
        summary("postrouting", [f"ip saddr {egress.subnet}", f"oifname != {GWBRIDGE}"],
                "masquerade"),
        summary("postrouting", [f"oifname {GWBRIDGE}", "ip saddr 127.0.0.0/8"], "masquerade"),
    }  # fmt: skip


# what the kernel holds --------------------------------------------------------------------------
def kernel_rules(rules: Iterable[list[dict[str, Any]]], *, skip: Iterable[str] = ()) -> set[str]:
    """Summaries of nft JSON rules (``kernel.inspect.nft_rules``), but those of chains in
    ``skip`` (chains that hold no per-object rules, e.g. a masquerade)."""
    skipped = set(skip)
    out = set()
    for rule in rules:
        chain = str(rule[0].get("chain", ""))
        if chain in skipped:
            continue
        matches, action = [], ""
        for expr in rule[1:]:
            if "match" in expr:
                matches.append(_match(expr["match"]))
            elif "dnat" in expr:
                action = _dnat(expr["dnat"])
            elif "reject" in expr:
                action = "reject"
            elif "masquerade" in expr:
                action = "masquerade"
            else:
                action = json.dumps(expr, sort_keys=True)
        out.add(summary(chain, matches, action))
    return out


def _match(match: dict[str, Any]) -> str:
    left, right, op = match.get("left", {}), match.get("right"), match.get("op")
    if op in ("==", "!=") and isinstance(left, dict):
        negated = "!= " if op == "!=" else ""
        if "payload" in left:
            payload = left["payload"]
            return f"{payload.get('protocol')} {payload.get('field')} {negated}{_value(right)}"
        if "meta" in left:
            return f"{left['meta'].get('key')} {negated}{right}"
        if op == "==" and "fib" in left and left["fib"].get("result") == "type":
            flags = " ".join(left["fib"].get("flags", []))
            return f"fib {flags} type {right}"
    return json.dumps(match, sort_keys=True)


def _value(right: Any) -> str:
    """A match's right side: a prefix as ``addr/len``, anything else as it is."""
    if isinstance(right, dict) and "prefix" in right:
        return f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}"
    return str(right)


def _dnat(dnat: dict[str, Any]) -> str:
    addr = dnat.get("addr")
    if isinstance(addr, str):
        return f"{addr}:{dnat['port']}" if "port" in dnat else addr
    if isinstance(addr, dict) and "map" in addr:
        entries = addr["map"].get("data", {}).get("set", [])
        targets = [_target(value) for _index, value in sorted(entries, key=lambda e: e[0])]
        return "numgen " + ", ".join(targets)
    return json.dumps(dnat, sort_keys=True)


def _target(value: Any) -> str:
    if isinstance(value, dict) and "concat" in value:
        ip, port = value["concat"]
        return f"{ip}:{port}"
    return str(value)
