"""The DNS server inside a real network namespace, asked by dig from inside it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ferry.kernel import nsfs
from ferry.network.dns import DnsServer

RECORDS = {"web": ("10.0.0.2",), "svc": ("10.0.0.9", "10.0.0.1"), "gone": ()}
NAMES = {"10.0.0.2": "web.my_overlay"}


@pytest.fixture(autouse=True, scope="module")
def _dig_and_root() -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "DNS namespace tests need root"
    elif shutil.which("dig") is None:
        reason = "dig is missing (apt-get install dnsutils)"
    if reason is None:
        return
    if os.environ.get("FERRY_CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def netns() -> Iterator[Path]:
    name = f"dnst-{os.getpid()}"
    path = nsfs.create_netns(name)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield path
    finally:
        nsfs.delete_netns(name)


@pytest.fixture
async def server(netns: Path) -> AsyncIterator[DnsServer]:
    dns_server = DnsServer(
        lambda _key, name: RECORDS.get(name), lambda _key, ip: NAMES.get(ip), upstreams=[]
    )
    try:
        await dns_server.attach("c1", netns)
        yield dns_server
    finally:
        await dns_server.close()


async def dig(netns: Path, *args: str) -> str:
    """dig run inside the namespace; awaited, so the server on this loop keeps answering."""
    proc = await asyncio.create_subprocess_exec(
        *("nsenter", f"--net={netns}", "--", "dig", "@127.0.0.11", "+tries=1", "+time=2"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode() + out.decode()
    return out.decode()


async def test_dig_in_the_namespace_gets_our_addresses_over_udp(
    server: DnsServer, netns: Path
) -> None:
    assert (await dig(netns, "+short", "web")).split() == ["10.0.0.2"]
    assert (await dig(netns, "+short", "SVC")).split() == ["10.0.0.9", "10.0.0.1"]


async def test_dig_in_the_namespace_gets_our_addresses_over_tcp(
    server: DnsServer, netns: Path
) -> None:
    assert (await dig(netns, "+tcp", "+short", "svc")).split() == ["10.0.0.9", "10.0.0.1"]


async def test_dig_gets_ptr_nxdomain_and_refused_answers(server: DnsServer, netns: Path) -> None:
    assert (await dig(netns, "+short", "-x", "10.0.0.2")).split() == ["web.my_overlay."]
    assert "status: NXDOMAIN" in await dig(netns, "gone")
    assert "status: REFUSED" in await dig(netns, "example.com")


async def test_detach_frees_the_address_for_the_next_attach(server: DnsServer, netns: Path) -> None:
    await server.detach("c1")
    assert "no servers could be reached" in await dig_failing(netns, "web")
    await server.attach("c1", netns)
    await server.attach("c1", netns)  # attaching again replaces the sockets
    assert (await dig(netns, "+short", "web")).split() == ["10.0.0.2"]


async def dig_failing(netns: Path, name: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *("nsenter", f"--net={netns}", "--", "dig", "@127.0.0.11", "+tries=1", "+time=1", name),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode != 0
    return out.decode()


async def test_port_53_stays_free_for_the_container_s_own_server(
    server: DnsServer, netns: Path
) -> None:
    # a DNS server of the container's own (dnsmasq, coredns) binds 0.0.0.0:53, UDP and TCP
    code = (
        "import socket\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 53))\n"
        "t = socket.socket(); t.bind(('0.0.0.0', 53)); t.listen()\n"
        "print('bound', flush=True); input()\n"
    )
    own = await asyncio.create_subprocess_exec(
        *("nsenter", f"--net={netns}", "--", "python3", "-c", code),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert own.stdout is not None
        line = await asyncio.wait_for(own.stdout.readline(), 10)
        assert line == b"bound\n"
        # and 127.0.0.11:53 still reaches the embedded DNS, over UDP and TCP
        assert (await dig(netns, "+short", "web")).split() == ["10.0.0.2"]
        assert (await dig(netns, "+tcp", "+short", "web")).split() == ["10.0.0.2"]
    finally:
        own.kill()
        await own.wait()
