"""Run inside a lab host: call a manager's cluster API (port 2377) directly with a node's own
certificate files, as a compromised node could. Prints one JSON line per call:
{"status": HTTP status, "body": the answer}.

argv: CERTS_DIR MANAGER_ADDR CALLS, where CALLS is a JSON list of [METHOD, PATH, BODY].
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys

import aiohttp


async def main(certs: str, manager: str, calls: list[list[object]]) -> None:
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")
    ctx.load_cert_chain(f"{certs}/node.pem", f"{certs}/node.key")
    ctx.check_hostname = False  # dialled by address; the chain is what is checked
    async with aiohttp.ClientSession() as session:
        for method, path, body in calls:
            url = f"https://{manager}:2377{path}"
            async with session.request(str(method), url, json=body, ssl=ctx) as resp:
                text = await resp.text()
                try:
                    answer = json.loads(text)
                except ValueError:
                    answer = text
                print(json.dumps({"status": resp.status, "body": answer}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
