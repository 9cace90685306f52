"""/events (``docker events``): the daemon's event bus (``ferry.events``) in Docker's shape.

``since`` replays the kept history from then (Ferry keeps ``HISTORY_EVENTS`` in memory);
without ``until`` the stream then follows new events until the client goes away; with an
``until`` in the past it ends after the history, with one in the future when that time comes
(moby ``api/server/router/system`` ``getEvents``). Each event is one JSON object on a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import web

from ferry.api import params
from ferry.api.server import add_route
from ferry.errors import InvalidArgument
from ferry.events import EVENT_FILTERS, EVENT_TYPES, Event, EventBus, included
from ferry.model import filters as f

# ferryd's server does not cancel a handler whose client left (aiohttp's default): a quiet
# stream looks at its connection this often, so a gone client's subscription ends
CLIENT_CHECK_S = 1.0


def timestamp_ns(query: params.Query, key: str) -> int | None:
    """Docker's ``since``/``until``: Unix seconds (with a fraction), RFC 3339 or a duration
    before now (``10m``), as moby's ``timetypes.GetTimestamp``; in nanoseconds."""
    raw = query.get(key, "")
    if not raw:
        return None
    try:
        return int(float(raw) * 1_000_000_000)
    except ValueError:
        pass
    try:
        return int(f.until_s(raw) * 1_000_000_000)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"invalid value for {key} {raw!r}: use a Unix time, RFC 3339 or a duration (10m)"
        ) from exc


class EventRoutes:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/events", self.events)

    async def events(self, request: web.Request) -> web.StreamResponse:
        wanted = params.filters(request.query, EVENT_FILTERS)
        f.one_of(wanted, "type", EVENT_TYPES)
        since = timestamp_ns(request.query, "since")
        until = timestamp_ns(request.query, "until")
        if since is not None and until is not None and until < since:
            raise InvalidArgument(  # moby's words (api/server/router/system)
                f"`since` time ({request.query['since']}) cannot be after `until` time "
                f"({request.query['until']})"
            )
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with self.bus.subscribe() as queue:
            last = 0
            for event in self.bus.history(since, until) if since is not None else []:
                last = event.time_ns
                if included(event, wanted):
                    await _send(response, event)
            with contextlib.suppress(ConnectionResetError):
                await self._follow(request, response, queue, (wanted, last, until))
        return response

    async def _follow(
        self,
        request: web.Request,
        response: web.StreamResponse,
        queue: asyncio.Queue[Event | None],
        window: tuple[f.Filters, int, int | None],
    ) -> None:
        """Send new events (after ``last``, the history's end) until ``until`` passes,
        forever without one, or until the client goes away."""
        wanted, last, until = window
        while True:
            left_s = CLIENT_CHECK_S if until is None else (until - time.time_ns()) / 1e9
            if left_s <= 0:
                return
            try:
                event = await asyncio.wait_for(queue.get(), min(left_s, CLIENT_CHECK_S))
            except TimeoutError:
                transport = request.transport
                if transport is None or transport.is_closing():
                    return
                continue
            if event is None:
                return  # too far behind: the bus dropped this subscriber
            if event.time_ns <= last or (until is not None and event.time_ns > until):
                continue  # already sent from the history, or after the end
            if included(event, wanted):
                await _send(response, event)


async def _send(response: web.StreamResponse, event: Event) -> None:
    await response.write(json.dumps(event.doc()).encode() + b"\n")
