"""Names, asked for for real: each local container's DNS against the store's endpoints.

What a container must resolve is built with the same NameTable the embedded DNS answers from,
but over the store's endpoints as they are now (not over what the network agent last
programmed, which is what the DNS server serves): a difference means DNS is stale. Each name is
asked as a container would, from inside its namespace, to 127.0.0.11:53.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import dns.exception
import dns.message
import dns.rdatatype

from ferry.doctor.findings import Finding
from ferry.errors import KernelError
from ferry.kernel import inspect, nsfs
from ferry.kernel.sockets import DNS_ADDR
from ferry.model.container import Container

if TYPE_CHECKING:
    from ferry.doctor.host import HostParts

NAMES_MAX = 64  # per container: doctor asks one question per name
NO_ANSWER = "(no answer)"


async def check_names(parts: HostParts, running: list[Container]) -> list[Finding]:
    table = parts.name_table()
    out = []
    for container in running:
        if not container.state.netns or not container.state.endpoints:
            continue
        cid = container.config.container_id
        path = nsfs.netns_path(container.state.netns)
        for name in table.names(cid)[:NAMES_MAX]:
            want = " ".join(sorted(table.lookup(cid, name) or ())) or "NXDOMAIN"
            try:
                have = await asyncio.to_thread(_ask, path, name)
            except KernelError:
                if parts.containers.is_running(cid):
                    raise
                break  # it ended while we asked: nothing to say about it

            if have == NO_ANSWER:  # the server does not answer here at all: one finding, not
                # one per name, and no more waiting out a timeout for each
                out.append(Finding(parts.hostname, "dns", container.config.name, "(any name)",
                                   "answers", NO_ANSWER))  # fmt: skip
                break
            if want != have:
                out.append(Finding(parts.hostname, "dns", container.config.name, name, want, have))
    return out


def _ask(path: Path, name: str) -> str:
    query = dns.message.make_query(name, dns.rdatatype.A)
    reply = inspect.udp_exchange(path, DNS_ADDR, 53, query.to_wire())
    if reply is None:
        return NO_ANSWER
    try:
        message = dns.message.from_wire(reply)
    except dns.exception.DNSException:
        return "(malformed answer)"
    if message.rcode() != 0:
        return "NXDOMAIN" if message.rcode() == 3 else f"rcode {message.rcode()}"
    return " ".join(sorted(r.to_text() for rrset in message.answer for r in rrset)) or "NXDOMAIN"
