"""The agent's connection to the managers' cluster API (mutual TLS, failover between managers).

Calls go to the manager that answered last; when it fails, the next known manager is tried.
The list of managers is refreshed from every heartbeat reply, so an agent follows the cluster
as managers join and leave.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from ferry.errors import Unavailable, from_status
from ferry.manager.cluster_api import PORT

CALL_TIMEOUT_S = 10.0
# A session snapshot is one line holding the whole streamed state: far beyond aiohttp's own
# line limit (128 KiB) in a busy swarm. Past this, the line is refused and the stream reopened.
MAX_LINE_BYTES = 256 << 20


def client_context(ca_path: Path, cert_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))
    ctx.load_cert_chain(str(cert_path), str(key_path))
    # Managers are pinned by our CA; they are dialled by IP, which their certificates name, but
    # an address seen through NAT may differ, so the chain is what is checked.
    ctx.check_hostname = False
    return ctx


def manager_url(addr: str) -> str:
    host, _, port = addr.partition(":")
    return f"https://{host}:{port or PORT}"


async def raise_for(resp: aiohttp.ClientResponse) -> None:
    if resp.status < 400:
        return
    text = await resp.text()
    try:
        message = json.loads(text).get("message", text)
    except ValueError:
        message = text
    raise from_status(resp.status, message)


class ManagerLink:
    def __init__(self, ssl_context: ssl.SSLContext, managers: list[str]) -> None:
        self._ssl = ssl_context
        self.managers = list(managers)
        self._current = 0
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def set_managers(self, managers: list[str]) -> None:
        if managers and sorted(managers) != sorted(self.managers):
            current = self.current
            self.managers = list(managers)
            self._current = self.managers.index(current) if current in self.managers else 0

    @property
    def current(self) -> str:
        return self.managers[self._current % len(self.managers)] if self.managers else ""

    def _rotate(self) -> None:
        self._current = (self._current + 1) % max(len(self.managers), 1)

    async def call(
        self, method: str, path: str, body: Any = None, *, timeout_s: float = CALL_TIMEOUT_S
    ) -> Any:
        last: Exception | None = None
        for _ in range(max(len(self.managers), 1)):
            url = manager_url(self.current) + path
            try:
                async with self._client().request(
                    method, url, json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)
                ) as resp:
                    await raise_for(resp)
                    return await resp.json()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                last = exc
                self._rotate()
            except Unavailable as exc:
                # a manager that cannot answer now (its store without a majority, a demoted
                # one giving up its store): another may
                last = exc
                self._rotate()
        if isinstance(last, Unavailable):
            raise last  # every manager answered so: their own words
        if isinstance(last, aiohttp.ClientConnectorCertificateError):
            raise Unavailable(
                f"no manager reachable ({', '.join(self.managers)}): their certificates are not "
                "of a root CA this node trusts (the swarm's root CA was rotated while this node "
                "was away, or this node was removed from the swarm): run 'docker swarm leave "
                "--force' here, then join again with a current token"
            ) from last
        raise Unavailable(f"no manager reachable ({', '.join(self.managers)}): {last}") from last

    async def use(self, ssl_context: ssl.SSLContext) -> None:
        """Call with another certificate from now on (this node's role changed): open
        connections, made with the old one, are closed."""
        self._ssl = ssl_context
        old, self._session = self._session, None
        if old is not None and not old.closed:
            await old.close()

    async def stream(self, path: str) -> AsyncIterator[dict[str, Any]]:
        """Yield the JSON lines of a long-lived stream from the current manager.

        Raises Unavailable when the stream breaks, and also when a line is not JSON or is
        longer than MAX_LINE_BYTES: the caller opens a new stream, which starts afresh."""
        url = manager_url(self.current) + path
        timeout = aiohttp.ClientTimeout(total=None, connect=CALL_TIMEOUT_S, sock_read=15.0)
        try:
            async with self._client().get(url, timeout=timeout) as resp:
                try:
                    await raise_for(resp)
                except Unavailable:
                    self._rotate()
                    raise
                pending = bytearray()
                async for chunk in resp.content.iter_any():
                    pending += chunk
                    while (end := pending.find(b"\n")) >= 0:
                        line = bytes(pending[:end])
                        del pending[: end + 1]
                        if line.strip():
                            yield _parse_line(line, url)
                    if len(pending) > MAX_LINE_BYTES:
                        raise Unavailable(f"session stream with {url}: a line over 256 MiB")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._rotate()
            raise Unavailable(f"session stream with {url} broke: {exc}") from exc

    async def upload(self, manager: str, path: str, body: AsyncIterator[bytes]) -> None:
        """Stream ``body`` to one given manager (log shipping): chunked, as it is produced."""
        url = manager_url(manager) + path
        timeout = aiohttp.ClientTimeout(total=None, connect=CALL_TIMEOUT_S)
        try:
            async with self._client().post(url, data=body, timeout=timeout) as resp:
                await raise_for(resp)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f"upload to {url} failed: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            # let the connector's transports finish closing before the loop goes away
            await asyncio.sleep(0)


def _parse_line(line: bytes, url: str) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise Unavailable(f"session stream with {url} sent a line that is not JSON") from exc
    if not isinstance(message, dict):
        raise Unavailable(f"session stream with {url} sent a line that is not an object")
    return message
