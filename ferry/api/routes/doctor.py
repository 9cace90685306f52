"""/ferry/doctor: Ferry's own (Docker has no such call). This host's findings, or with
``all=true`` on a manager, every node's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ferry.api import params
from ferry.api.server import add_route
from ferry.daemon.swarm import SwarmController
from ferry.doctor.findings import Finding


class DoctorRoutes:
    def __init__(
        self, swarm: SwarmController, examine: Callable[[], Awaitable[list[Finding]]]
    ) -> None:
        self.swarm = swarm
        self.examine = examine

    def register(self, app: web.Application) -> None:
        add_route(app, "GET", "/ferry/doctor", self.doctor)

    async def doctor(self, request: web.Request) -> web.Response:
        if params.boolean(request.query, "all"):
            findings = await self.swarm.require_manager().doctor.examine_all()
        else:
            findings = await self.examine()
        return web.json_response({"Findings": [f.to_json() for f in findings]})
