"""Run inside a lab host: open a manager's session stream (``GET /v1/session`` on 2377) with a
node's own certificate files, as a compromised node could, and print its first line (the
snapshot of everything that node is sent) as it came; then close the stream.

argv: CERTS_DIR MANAGER_ADDR
"""

from __future__ import annotations

import asyncio
import ssl
import sys

import aiohttp


async def main(certs: str, manager: str) -> None:
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")
    ctx.load_cert_chain(f"{certs}/node.pem", f"{certs}/node.key")
    ctx.check_hostname = False  # dialled by address; the chain is what is checked
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"https://{manager}:2377/v1/session", ssl=ctx) as resp,
    ):
        resp.raise_for_status()
        line = bytearray()
        async for chunk in resp.content.iter_any():
            line += chunk
            if b"\n" in chunk:
                break
        sys.stdout.buffer.write(bytes(line[: line.index(b"\n") + 1]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
