"""/containers, /exec: standalone containers in Docker's shapes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from typing import Any, BinaryIO

from aiohttp import web

from ferry.agent.containers import ContainerService, CreateRequest
from ferry.api import render
from ferry.api.hijack import closed_on_error, frame, hijack
from ferry.api.models.containers import ContainerCreate, ExecCreate, ExecStart
from ferry.api.server import add_route, query_bool, query_filters, read_json
from ferry.errors import Conflict, InvalidArgument
from ferry.model.container import NetworkChoice, PublishedPort, Status, parse_env
from ferry.runtime import bundle
from ferry.runtime.execs import STDOUT, ExecService

FOLLOW_POLL_S = 0.05


def _signal(value: str | None) -> int:
    if not value:
        return signal.SIGKILL
    if value.isdigit():
        return int(value)
    name = value.upper() if value.upper().startswith("SIG") else f"SIG{value.upper()}"
    try:
        return int(signal.Signals[name])
    except KeyError as exc:
        raise InvalidArgument(f"invalid signal {value!r}") from exc


def create_request(name: str, body: ContainerCreate) -> CreateRequest:
    cmd = tuple((body.Entrypoint or []) + (body.Cmd or []))
    host = body.HostConfig
    networks: list[NetworkChoice] = []
    endpoints = (body.NetworkingConfig.EndpointsConfig or {}) if body.NetworkingConfig else {}
    mode = host.NetworkMode if host else ""
    if mode and mode not in ("default", "none", "bridge") and mode not in endpoints:
        endpoints = {mode: None, **endpoints}
    for net_name, settings in endpoints.items():
        if net_name in ("default", "none"):
            continue  # modes, not networks: the docker CLI sends "default" when none is given
        aliases = tuple(settings.Aliases or []) if settings else ()
        ip = settings.IPAMConfig.IPv4Address if settings and settings.IPAMConfig else ""
        networks.append(NetworkChoice(net_name, aliases, ip))
    if mode == "bridge" and not networks:
        raise InvalidArgument(
            "Ferry has no default bridge network: run the container with --network NAME "
            "(a bridge network from 'network create', or an attachable overlay), or without one"
        )
    ports = []
    for key, bindings in ((host.PortBindings or {}) if host else {}).items():
        target, _, proto = key.partition("/")
        if not target.isdigit():
            raise InvalidArgument(f"invalid port {key!r}: use PORT[/PROTOCOL]")
        for binding in bindings or [{}]:
            published = binding.get("HostPort") or target
            if not published.isdigit():
                raise InvalidArgument(f"invalid host port {published!r}")
            ports.append(
                PublishedPort(
                    int(published), int(target), proto or "tcp", binding.get("HostIp", "")
                )
            )
    return CreateRequest(
        image=body.Image,
        ports=tuple(ports),
        cmd=cmd,
        name=name,
        env=parse_env(body.Env or []),
        hostname=body.Hostname,
        networks=tuple(networks),
        auto_remove=bool(host and host.AutoRemove),
        labels=body.Labels,
        working_dir=body.WorkingDir,
    )


class ContainerRoutes:
    def __init__(self, containers: ContainerService, execs: ExecService) -> None:
        self.containers = containers
        self.execs = execs

    def register(self, app: web.Application) -> None:
        add_route(app, "POST", "/containers/create", self.create)
        add_route(app, "GET", "/containers/json", self.list)
        add_route(app, "GET", "/containers/{id}/json", self.inspect)
        add_route(app, "POST", "/containers/{id}/start", self.start)
        add_route(app, "POST", "/containers/{id}/stop", self.stop)
        add_route(app, "POST", "/containers/{id}/restart", self.restart)
        add_route(app, "POST", "/containers/{id}/kill", self.kill)
        add_route(app, "DELETE", "/containers/{id}", self.remove)
        add_route(app, "POST", "/containers/{id}/wait", self.wait)
        add_route(app, "GET", "/containers/{id}/logs", self.logs)
        add_route(app, "POST", "/containers/{id}/attach", self.attach)
        add_route(app, "POST", "/containers/{id}/resize", self.resize)
        add_route(app, "POST", "/containers/{id}/exec", self.exec_create)
        add_route(app, "POST", "/exec/{id}/start", self.exec_start)
        add_route(app, "GET", "/exec/{id}/json", self.exec_inspect)
        add_route(app, "POST", "/exec/{id}/resize", self.resize)

    async def create(self, request: web.Request) -> web.Response:
        body = ContainerCreate.model_validate(await read_json(request))
        container = await self.containers.create(
            create_request(request.query.get("name", ""), body)
        )
        return web.json_response({"Id": container.config.container_id, "Warnings": []}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        show_all = query_bool(request, "all")
        filters = query_filters(request)
        out = []
        for container in self.containers.all():
            if not show_all and container.state.status != Status.RUNNING:
                continue
            if "name" in filters and not any(n in container.config.name for n in filters["name"]):
                continue
            if "status" in filters and container.state.status.value not in filters["status"]:
                continue
            out.append(render.container_summary(container, self.containers.network_ref))
        return web.json_response(out)

    async def inspect(self, request: web.Request) -> web.Response:
        container = self.containers.find(request.match_info["id"])
        sandbox = str(self.containers.netns_path(container))
        return web.json_response(
            render.container_inspect(container, sandbox, self.containers.network_ref)
        )

    async def start(self, request: web.Request) -> web.Response:
        started = await self.containers.start(request.match_info["id"])
        return web.Response(status=204 if started else 304)

    async def stop(self, request: web.Request) -> web.Response:
        timeout = float(request.query.get("t", "10"))
        stopped = await self.containers.stop(request.match_info["id"], timeout)
        return web.Response(status=204 if stopped else 304)

    async def restart(self, request: web.Request) -> web.Response:
        await self.containers.restart(request.match_info["id"], float(request.query.get("t", "10")))
        return web.Response(status=204)

    async def kill(self, request: web.Request) -> web.Response:
        await self.containers.kill(request.match_info["id"], _signal(request.query.get("signal")))
        return web.Response(status=204)

    async def remove(self, request: web.Request) -> web.Response:
        await self.containers.remove(request.match_info["id"], query_bool(request, "force"))
        return web.Response(status=204)

    async def wait(self, request: web.Request) -> web.StreamResponse:
        # Docker answers the headers at once and the body when the container ends: the docker
        # CLI waits for those headers before it starts the container (``run``).
        container = self.containers.find(request.match_info["id"])
        condition = request.query.get("condition", "not-running")
        waiting = self.containers.exit_future(
            container.config.container_id, next_exit=condition in ("next-exit", "removed")
        )
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        code = await waiting
        with contextlib.suppress(ConnectionResetError):
            await response.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
        return response

    async def resize(self, _request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _follow(self, cid: str, log: BinaryIO, follow: bool, emit: Any) -> None:
        """Send the log from where ``log`` stands; with ``follow``, keep going until the
        container ends. The file is opened by the caller, early: a container run with --rm
        takes its log with it when it ends, and an open file can still be read to the end."""
        while True:
            chunk = log.read(65536)
            if chunk:
                await emit(chunk)
                continue
            if not follow:
                return
            if not self.containers.is_running(cid):
                if rest := log.read():
                    await emit(rest)
                return
            await asyncio.sleep(FOLLOW_POLL_S)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
        follow = query_bool(request, "follow")
        tail = request.query.get("tail", "all")
        path = self.containers.store.log_path(cid)
        position = 0
        if tail != "all" and tail.isdigit():
            data = path.read_bytes()
            lines = data.splitlines(keepends=True)
            position = (
                len(data) - sum(len(line) for line in lines[-int(tail) :])
                if int(tail)
                else len(data)
            )
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.docker.multiplexed-stream"}
        )
        await response.prepare(request)

        async def emit(chunk: bytes) -> None:
            await response.write(frame(STDOUT, chunk))

        with open(path, "rb") as log, contextlib.suppress(ConnectionResetError):
            log.seek(position)
            await self._follow(cid, log, follow, emit)
        return response

    async def attach(self, request: web.Request) -> web.StreamResponse:
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
        stream = query_bool(request, "stream", True)
        with open(self.containers.store.log_path(cid), "rb") as log:
            if not query_bool(request, "logs"):
                log.seek(0, os.SEEK_END)  # only what comes from now on
            response = await hijack(request, tty=False)

            async def emit(chunk: bytes) -> None:
                await response.write(frame(STDOUT, chunk))

            with closed_on_error(request), contextlib.suppress(ConnectionResetError):
                if stream:
                    await self._wait_for_start(cid, container.state.started_at)
                await self._follow(cid, log, stream, emit)
        return response

    async def _wait_for_start(self, cid: str, started_before: str) -> None:
        """Wait for the start that usually follows an attach: a new started_at, since a short
        command may have run and ended between two looks (and with --rm, be gone already)."""
        for _ in range(100):
            now = self.containers.get(cid)
            if now is None or now.running or now.state.started_at != started_before:
                return
            await asyncio.sleep(FOLLOW_POLL_S)

    async def exec_create(self, request: web.Request) -> web.Response:
        body = ExecCreate.model_validate(await read_json(request))
        container = self.containers.find(request.match_info["id"])
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        env = bundle.environment(container.config)
        for pair in parse_env(body.Env or []):
            key, _, value = pair.partition("=")
            env[key] = value
        instance = self.execs.create(
            container.config.container_id,
            body.Cmd,
            env,
            tty=body.Tty,
            attach_stdin=body.AttachStdin,
            workdir=body.WorkingDir,
        )
        return web.json_response({"Id": instance.exec_id}, status=201)

    async def exec_start(self, request: web.Request) -> web.StreamResponse:
        body = ExecStart.model_validate(await read_json(request))
        instance = self.execs.get(request.match_info["id"])
        container = self.containers.find(instance.container_id)
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        if body.Detach:
            self.execs.run_detached(instance, container.state.pid)
            return web.Response(status=200)
        response = await hijack(
            request, instance.tty, instance.stdin_queue if instance.attach_stdin else None
        )

        async def sink(stream: int, data: bytes) -> None:
            with contextlib.suppress(ConnectionResetError):
                await response.write(data if instance.tty else frame(stream, data))

        with closed_on_error(request):
            await self.execs.run(instance, container.state.pid, sink)
        return response

    async def exec_inspect(self, request: web.Request) -> web.Response:
        instance = self.execs.get(request.match_info["id"])
        return web.json_response(
            {
                "ID": instance.exec_id,
                "ContainerID": instance.container_id,
                "Running": instance.running,
                "ExitCode": instance.exit_code,
                "Pid": instance.pid,
                "OpenStdin": instance.attach_stdin,
                "OpenStdout": True,
                "OpenStderr": True,
                "ProcessConfig": {
                    "tty": instance.tty,
                    "entrypoint": instance.cmd[0],
                    "arguments": instance.cmd[1:],
                },
            }
        )
