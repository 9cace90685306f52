"""Sockets bound inside a network namespace, handed back to code that never leaves its own.

A socket keeps the namespace it was created in for its whole life, whichever thread later uses
it. So a short-lived thread (:func:`ferry.kernel.nsfs.run_in_netns`) ``setns``es, creates and
binds the sockets, and returns them; the event loop then serves them from ferryd's namespace.
This is the only module that opens sockets inside another namespace.

Be aware: the sockets are returned non-blocking and already bound (the TCP one listening); the
caller owns them and must close them. Binding 127.0.0.11 needs no address in the namespace, only
``lo`` up, because all of 127.0.0.0/8 is local.

Port 53 stays free for the container's own servers, as in Docker: the embedded DNS listens on a
free port of 127.0.0.11 and a DNAT in the namespace (table ``ferry_dns``) sends 127.0.0.11:53
there; conntrack turns the answers' source back into port 53.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from pathlib import Path

from ferry.errors import KernelError
from ferry.kernel.nft import replace_table
from ferry.kernel.nsfs import run_in_netns

DNS_ADDR = "127.0.0.11"
DNS_PORT = 53
DNS_TABLE = "ferry_dns"
NFT_TIMEOUT_S = 10
_TCP_BACKLOG = 128
_FREE_PORT_ATTEMPTS = 20


def bind_dns_sockets(
    addr: str = DNS_ADDR, port: int = DNS_PORT
) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on ``addr:port`` in the calling thread's namespace.

    ``port=0`` picks one free port for both (tests serve on loopback this way).
    """
    if port != 0:
        return _bind_pair(addr, port)
    # The free port the kernel gave the UDP socket may be taken for TCP: try a few.
    for _ in range(_FREE_PORT_ATTEMPTS - 1):
        try:
            return _bind_pair(addr, 0)
        except KernelError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    return _bind_pair(addr, 0)


def _bind_pair(addr: str, port: int) -> tuple[socket.socket, socket.socket]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((addr, port))
        # Reconnecting clients leave TIME_WAIT sockets on the port; a re-attach must still bind.
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((addr, udp.getsockname()[1]))
        tcp.listen(_TCP_BACKLOG)
    except OSError as exc:
        udp.close()
        tcp.close()
        raise KernelError("bind", f"{addr}:{port}", exc.errno, exc.strerror or "") from exc
    udp.setblocking(False)
    tcp.setblocking(False)
    return udp, tcp


def dns_redirect(addr: str, port: int) -> str:
    """The body of table ``ferry_dns``: queries to ``addr``:53 go to ``port``."""
    return (
        "  chain output {\n"
        "    type nat hook output priority -100; policy accept;\n"
        f"    ip daddr {addr} udp dport {DNS_PORT} dnat to {addr}:{port}\n"
        f"    ip daddr {addr} tcp dport {DNS_PORT} dnat to {addr}:{port}\n"
        "  }\n"
    )


def _bind_redirected(addr: str) -> tuple[socket.socket, socket.socket]:
    udp, tcp = bind_dns_sockets(addr, 0)
    script = replace_table("ip", DNS_TABLE, dns_redirect(addr, udp.getsockname()[1]))
    try:
        # nft(8), not libnftables: a context made in each new namespace kept about 0.5 MiB of
        # ferryd's memory per container. A child forked from this thread is in its namespace.
        done = subprocess.run(
            ["nft", "-f", "-"], input=script, capture_output=True, text=True,
            timeout=NFT_TIMEOUT_S, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise KernelError("nft", DNS_TABLE, None, done.stderr.strip() or "failed")
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


def open_dns_sockets(netns: Path, addr: str = DNS_ADDR) -> tuple[socket.socket, socket.socket]:
    """The DNS sockets inside the namespace at ``netns``, on a free port with ``addr``:53
    redirected to it (a blocking call: run it off the event loop, e.g. with
    ``asyncio.to_thread``)."""
    try:
        return run_in_netns(netns, lambda: _bind_redirected(addr))
    except KernelError as exc:
        if exc.operation != "bind":
            raise
        detail = os.strerror(exc.errno) if exc.errno else ""
        raise KernelError("bind", f"{exc.obj} in {netns}", exc.errno, detail) from exc
