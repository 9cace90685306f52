"""DNS figures: sequential latency from inside a container's namespace, and q/s under dnsperf.

A DnsServer runs on this process's event loop, attached to a fresh namespace "dnst-b<pid>"; the
clients run *inside* that namespace as separate processes (nsenter), so each figure includes the
kernel round trip and the client never competes with the server for the GIL. Needs root,
nsenter and dnsperf.

Run from the repository root: .venv/bin/python -m benchmarks.dns_micro
(writes benchmarks/results/dns_micro.json; `python benchmarks/dns_micro.py` cannot import
`benchmarks.common`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import dnsperf_figures, median, percentile, write
from ferry.kernel import nsfs
from ferry.network.dns import DnsServer

QUERIES = 1000
WARMUP = 100
DNSPERF_S = 10
RECORDS: dict[str, tuple[str, ...]] = {
    "web": ("10.0.1.2",),
    "db": ("10.0.1.3",),
    "api": ("10.0.1.4", "10.0.1.5", "10.0.1.6"),
    "tasks.api": ("10.0.1.4", "10.0.1.5", "10.0.1.6"),
    "web.my_overlay": ("10.0.1.2",),
}
NAMES = {"10.0.1.2": "web.my_overlay", "10.0.1.3": "db.my_overlay"}
DNSPERF_QUERIES = [
    "web A",
    "db A",
    "api A",
    "tasks.api A",
    "WEB.my_overlay A",
    "web AAAA",
    "2.1.0.10.in-addr.arpa PTR",
]

# The sequential client: plain blocking UDP from inside the namespace, timing send -> reply.
CLIENT = """
import json, socket, sys, time
import dns.message
names = ["web", "db", "api", "tasks.api", "Web.My_Overlay"]
total, warmup = int(sys.argv[1]), int(sys.argv[2])
packets = [dns.message.make_query(n, "A").to_wire() for n in names]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.11", 53))
sock.settimeout(2)
samples = []
for i in range(warmup + total):
    packet = packets[i % len(packets)]
    start = time.perf_counter()
    sock.send(packet)
    reply = sock.recv(4096)
    elapsed = time.perf_counter() - start
    assert reply[:2] == packet[:2] and reply[3] & 0x0F == 0, reply
    if i >= warmup:
        samples.append(elapsed)
print(json.dumps(samples))
"""


async def run_in(netns: Path, *argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "nsenter",
        f"--net={netns}",
        "--",
        *argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.decode().strip()}")
    return out.decode()


async def measure(netns: Path) -> dict[str, Any]:
    server = DnsServer(
        lambda _key, name: RECORDS.get(name), lambda _key, ip: NAMES.get(ip), upstreams=[]
    )
    await server.attach("bench", netns)
    try:
        samples = json.loads(
            await run_in(netns, sys.executable, "-c", CLIENT, str(QUERIES), str(WARMUP))
        )
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as data:
            data.write("\n".join(DNSPERF_QUERIES) + "\n")
        try:
            output = await run_in(
                netns,
                "dnsperf",
                *("-s", "127.0.0.11", "-l", str(DNSPERF_S), "-d", data.name),
                *("-c", "4", "-Q", "20000"),
            )
        finally:
            os.unlink(data.name)
    finally:
        await server.close()
    return {
        "seq_queries": len(samples),
        "seq_p50_ms": median(samples) * 1000,
        "seq_p99_ms": percentile(samples, 99) * 1000,
        "seq_max_ms": max(samples) * 1000,
        **{f"dnsperf_{key}": value for key, value in dnsperf_figures(output).items()},
        "dnsperf_cmd": f"dnsperf -s 127.0.0.11 -l {DNSPERF_S} -c 4 -Q 20000 (max 20 000 q/s)",
        "cpus": os.cpu_count(),
    }


def main() -> None:
    name = f"dnst-b{os.getpid()}"
    netns = nsfs.create_netns(name)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        figures = asyncio.run(measure(netns))
    finally:
        nsfs.delete_netns(name)
    write("dns_micro", figures)


if __name__ == "__main__":
    main()
