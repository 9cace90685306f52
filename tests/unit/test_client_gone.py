"""A client that goes away mid-request is one quiet line in ferryd's log, never a traceback
(aiohttp logs a handler's exception as "Error handling request" at error level with it)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ferry.api.body import read_json
from ferry.api.server import add_route, make_app


def _app() -> web.Application:
    app = make_app()

    async def body(request: web.Request) -> web.Response:
        return web.json_response(await read_json(request))

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(100_000):  # bounded: the client is gone long before
            await response.write(b"x" * 4096)
        return response

    async def upstream_refused(request: web.Request) -> web.Response:
        # a handler's own connection failing (to a manager, say) is not the client going away
        raise ConnectionRefusedError("connection to the manager refused")

    add_route(app, "POST", "/body", body)
    add_route(app, "GET", "/stream", stream)
    add_route(app, "GET", "/refused", upstream_refused)
    return app


@pytest.fixture
async def sock(tmp_path: Path) -> AsyncIterator[str]:
    # served as ferryd serves its API: an AppRunner on a unix socket
    runner = web.AppRunner(_app(), access_log=None, handle_signals=False)
    await runner.setup()
    path = str(tmp_path / "api.sock")
    await web.UnixSite(runner, path).start()
    yield path
    await runner.cleanup()


def _loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def _gone(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "client went away"]


async def _until_logged(caplog: pytest.LogCaptureFixture, count: int) -> None:
    """Wait (bounded) until aiohttp has dealt with ``count`` requests one way or the other."""
    for _ in range(500):
        if len(_loud(caplog)) + len(_gone(caplog)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server logged nothing about the requests")


async def _half_send(path: str, data: bytes, *, abort: bool, read_first: bool = False) -> None:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(data)
    await writer.drain()
    if read_first:
        await reader.read(1024)
    if abort:
        writer.transport.abort()
    else:
        writer.close()


@pytest.mark.parametrize("abort", [True, False], ids=["reset", "closed"])
async def test_an_aborted_body_is_one_quiet_line(
    sock: str, caplog: pytest.LogCaptureFixture, abort: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    head = b"POST /v1.47/body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    for _ in range(3):
        await _half_send(sock, head + b'{"a"', abort=abort)
    await _until_logged(caplog, 3)
    assert _loud(caplog) == []
    assert len(_gone(caplog)) == 3
    assert all(r.levelno <= logging.INFO for r in _gone(caplog))


async def test_a_client_gone_mid_stream_is_one_quiet_line(
    sock: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await _half_send(sock, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", abort=True, read_first=True)
    await _until_logged(caplog, 1)
    assert _loud(caplog) == []
    assert len(_gone(caplog)) == 1


async def test_a_handlers_own_connection_error_is_still_an_error(
    sock: str, caplog: pytest.LogCaptureFixture
) -> None:
    # the client is still there: this is Ferry's failure and must be seen, not hidden
    reader, writer = await asyncio.open_unix_connection(sock)
    writer.write(b"GET /refused HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 500")
    assert _loud(caplog)
    assert _gone(caplog) == []
