"""Error kinds → HTTP responses, shared by the local API and the cluster API."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError
from aiohttp.web_protocol import RequestPayloadError
from pydantic import ValidationError

from ferry.errors import FerryError

log = logging.getLogger("ferry.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str) -> web.Response:
    # Exactly "application/json" (no charset): the docker CLI only unwraps the message then.
    body = json.dumps({"message": message}).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


def validation_message(exc: ValidationError) -> str:
    """The first wrong field of a request body, named: 'invalid request body: Name: ...'."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "the body"
    return f"invalid request body: {where}: {first.get('msg', 'invalid value')}"


def client_gone(request: web.Request, exc: BaseException) -> bool:
    """Whether ``exc`` is the client having gone away: a reset or broken pipe (or a body cut
    short) while the request's connection is lost or closing. A handler's own connection
    failing (to a manager, a registry) with the client still there is not."""
    if not isinstance(exc, ConnectionError | RequestPayloadError | ClientPayloadError):
        return False
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def client_gone_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client that goes away mid-body or mid-stream (an aborted upload, a closed ``attach``,
    ``logs -f`` or ``events`` left with Ctrl-C) is one debug line, not aiohttp's "Error
    handling request" traceback at error level. The answer returned is never sent: aiohttp
    finds the connection gone and drops it."""
    try:
        return await handler(request)
    except Exception as exc:
        if not client_gone(request, exc):
            raise
        log.debug(
            "client went away",
            extra={"fields": {"request": f"{request.method} {request.path}", "error": exc}},
        )
        return web.Response(status=499, reason="Client Closed Request")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except FerryError as exc:
        if exc.http_status >= 500:
            log.warning("request failed", extra={"fields": {"path": request.path, "error": exc}})
        return error_response(exc.http_status, str(exc))
    except ValidationError as exc:
        return error_response(400, validation_message(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # routing (404, 405) and aiohttp's own refusals leave in Docker's shape too
        message = {404: "page not found", 405: "method not allowed"}.get(
            exc.status, exc.reason.lower()
        )
        return error_response(exc.status, message)
