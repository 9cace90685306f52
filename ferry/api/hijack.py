"""Docker's hijacked streams (``exec`` start, ``attach``) on aiohttp.

The client sends ``Connection: Upgrade`` / ``Upgrade: tcp``; the server answers ``101
Switching Protocols`` and the connection becomes a raw byte stream both ways: output framed
in Docker's multiplexed format (8-byte header: stream, 0, 0, 0, big-endian length) unless a
TTY merges it, input passed through as is. aiohttp knows the ``tcp`` upgrade; its bytes after
the handshake are handed to a parser object, which here just queues them.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Iterator
from typing import Any, cast

from aiohttp import web

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


class _RawResponse(web.StreamResponse):
    # No Content-Length and no chunked encoding: after the upgrade the body is a bare stream.
    _length_check = False


class _HalfClose(asyncio.Protocol):
    """Stands between the transport and aiohttp's protocol after an upgrade.

    A client with nothing to send half-closes its side (the docker CLI does, for an exec
    without stdin); aiohttp would answer that EOF by closing the connection and the output
    would be lost. Here EOF only ends stdin, and the connection stays open for the output.
    """

    def __init__(self, inner: asyncio.Protocol, stdin: asyncio.Queue[bytes | None] | None) -> None:
        self._inner = inner
        self._stdin = stdin

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool:
        if self._stdin is not None:
            self._stdin.put_nowait(None)
        return True  # keep the transport open for writing

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _StdinParser:
    """Receives the bytes a client sends after the upgrade (its stdin)."""

    def __init__(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._queue = queue

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self._queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(None)


@contextlib.contextmanager
def closed_on_error(request: web.Request) -> Iterator[None]:
    """A hijacked stream whose handler fails must still end: the transport stays open for
    output after the client's half-close, so its client would otherwise wait forever."""
    try:
        yield
    except BaseException:
        if request.transport is not None:
            request.transport.close()
        raise


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


async def hijack(
    request: web.Request, tty: bool, stdin: asyncio.Queue[bytes | None] | None = None
) -> web.StreamResponse:
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    headers = {"Content-Type": RAW if tty else MULTIPLEXED}
    if upgrade:
        headers |= {"Connection": "Upgrade", "Upgrade": "tcp"}
    response = _RawResponse(status=101 if upgrade else 200, headers=headers)
    response.force_close()
    await response.prepare(request)
    protocol = request.protocol
    transport = request.transport
    if protocol is not None and transport is not None:
        if stdin is not None:
            cast(Any, protocol).set_parser(_StdinParser(stdin))
        transport.set_protocol(_HalfClose(cast(asyncio.Protocol, protocol), stdin))
    return response
