"""Published ports as nftables rules (pure: plans and their text).

Design notes — the routing mesh without IPVS, as three hops:

    client → any node:P ──(host table: DNAT)──▶ ingress sandbox (egress subnet's 2nd address):P
           ──(sandbox table: DNAT round robin + masquerade)──▶ a running task's ingress address:T

- Host table ``ip ferry_ports`` (every node): ``fib daddr type local`` matches any of the
  host's own addresses, so the port is open on every address of every node. Ingress ports go to
  the ingress sandbox on the egress bridge; host-mode task ports and ``run -p`` ports go straight
  to the container's address on the egress bridge. The same rules sit in the output chain, for
  connections made on the node itself.
- Ingress sandbox table ``ip ferry_ingress``: per published port, ``numgen inc`` picks a running
  task (on any node, over the ingress overlay) and ``ct status dnat masquerade`` makes the task
  reply to the sandbox, which undoes both translations on the way back. A port with no running
  task gets no rule: the connection then reaches the sandbox itself, where nothing listens, and
  the kernel refuses it at once — as a scaled-to-zero service should.
- Conntrack keeps every established flow on its task while the tables are replaced.
- Ferry's own ports (``model.ports``) are never forwarded: the API refuses to publish them, and
  a record from before that check is left out here (``split_reserved``), so no stored spec can
  take WireGuard's or the cluster API's port away from the node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ferry.model.ports import reserved

HOST_TABLE = "ferry_ports"
INGRESS_TABLE = "ferry_ingress"
INGRESS_IF = "eth0"  # the ingress sandbox's interface on the ingress overlay
GATEWAY_IF = "eth1"  # and its interface on the egress bridge
# The sandbox's port on the egress bridge is not isolated (a container calling a published
# port on its own node is bridged to it): it forwards from that side only what it translated
# for a published port, never a container's packet routed through it to another container or
# to the ingress overlay.
_SANDBOX_FORWARD = f"""  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "{GATEWAY_IF}" ct status dnat accept
    iifname "{GATEWAY_IF}" ct direction reply accept
    iifname "{GATEWAY_IF}" drop
  }}
"""


@dataclass(frozen=True, order=True)
class HostForward:
    protocol: str
    published: int
    target_ip: str
    target_port: int
    host_ip: str = ""


@dataclass(frozen=True, order=True)
class IngressPort:
    protocol: str
    published: int
    target: int
    backends: tuple[str, ...]


def ingress_forwards(ports: Iterable[tuple[str, int]], sandbox_ip: str) -> list[HostForward]:
    """Every ingress port, on every node, goes to the ingress sandbox (at ``sandbox_ip``, its
    address on the egress bridge: ``EgressSubnet.sandbox_ip``)."""
    return [HostForward(proto, port, sandbox_ip, port) for proto, port in sorted(set(ports))]


def split_reserved(
    forwards: Iterable[HostForward], data_path_port: int
) -> tuple[list[HostForward], list[HostForward]]:
    """(forwards to render, forwards of one of Ferry's own ports, which never are; the VXLAN
    pair of ``data_path_port`` among them)."""
    kept: list[HostForward] = []
    refused: list[HostForward] = []
    for f in forwards:
        (refused if reserved(f.protocol, f.published, data_path_port) else kept).append(f)
    return kept, refused


def render_host(forwards: Iterable[HostForward]) -> str:
    rules = []
    for f in sorted(forwards):
        match = f"ip daddr {f.host_ip} " if f.host_ip else "fib daddr type local "
        rules.append(
            f"{match}{f.protocol} dport {f.published} dnat ip to {f.target_ip}:{f.target_port}"
        )
    if not rules:
        return ""
    body = ""
    for chain, hook in (("prerouting", "prerouting"), ("output", "output")):
        body += f"  chain {chain} {{\n    type nat hook {hook} priority -100; policy accept;\n"
        body += "".join(f"    {rule}\n" for rule in rules) + "  }\n"
    return body


def render_ingress(ports: Iterable[IngressPort]) -> str:
    rules = []
    for port in sorted(ports):
        if port.backends:
            targets = ", ".join(f"{i} : {ip} . {port.target}" for i, ip in enumerate(port.backends))
            rules.append(
                f"{port.protocol} dport {port.published} "
                f"dnat ip to numgen inc mod {len(port.backends)} map {{ {targets} }}"
            )
    body = _SANDBOX_FORWARD
    if not rules:
        return body
    body += "  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n"
    body += "".join(f"    {rule}\n" for rule in rules) + "  }\n"
    body += "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
    body += f'    oifname "{INGRESS_IF}" ct status dnat masquerade\n  }}\n'
    return body
