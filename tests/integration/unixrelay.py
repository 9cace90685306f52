"""A loopback TCP port in front of a unix socket, for HTTP clients that only speak TCP.

It listens on 127.0.0.1 (an ephemeral port, never another address) in a thread of the test
process with its own event loop, and pipes each connection to the socket: a tool like
schemathesis reaches a lab host's ferryd without any lab address being dialled from the root
namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path


class UnixRelay:
    """127.0.0.1:<ephemeral port> → a unix socket, served by an event loop in a thread."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    def __enter__(self) -> str:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = future.result(timeout=10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        # Closing the connections ends their pipes; cancelling the handlers instead makes
        # asyncio (3.11) log each cancelled connection callback as an error.
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(client_w)
        try:
            unix_r, unix_w = await asyncio.open_unix_connection(str(self.socket_path))
            self._writers.add(unix_w)
            await asyncio.gather(
                _pipe(client_r, unix_w), _pipe(unix_r, client_w), return_exceptions=True
            )
        except OSError:
            client_w.close()
        finally:
            self._writers.discard(client_w)
            self._handlers.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            writer.close()
