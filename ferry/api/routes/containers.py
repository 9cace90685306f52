"""/containers, /exec: standalone containers in Docker's shapes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import signal
from collections.abc import Callable
from typing import Any, BinaryIO

from aiohttp import web

from ferry.agent.containers import STOP_TIMEOUT_S, ContainerService, CreateRequest
from ferry.api import params, render
from ferry.api.body import SMALL_BODY_BYTES, read_model
from ferry.api.hijack import closed_on_error, frame, hijack
from ferry.api.models.containers import ContainerCreate, ExecCreate, ExecStart
from ferry.api.server import add_route
from ferry.errors import Conflict, InvalidArgument
from ferry.model.container import Container, NetworkChoice, PublishedPort, Status
from ferry.model.rules import check_working_dir, parse_env, quoted
from ferry.runtime import bundle
from ferry.runtime.execs import STDOUT, ExecService

FOLLOW_POLL_S = 0.05
PORT_RE = re.compile(r"^[0-9]{1,5}$")
LIST_FILTERS = ("id", "label", "name", "status")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


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
    ports = published_ports(host.PortBindings or {}) if host else ()
    return CreateRequest(
        image=body.Image,
        ports=ports,
        cmd=cmd,
        name=name,
        env=parse_env(body.Env or []),
        hostname=body.Hostname,
        networks=tuple(networks),
        auto_remove=bool(host and host.AutoRemove),
        labels=body.Labels,
        working_dir=body.WorkingDir,
    )


def _listed(container: Container, filters: dict[str, list[str]]) -> bool:
    """Docker's container filters that Ferry keeps: name (substring), id (prefix), status and
    label (``KEY`` or ``KEY=VALUE``), each a list of alternatives."""
    config = container.config
    tests: dict[str, Callable[[str], bool]] = {
        "name": lambda v: v.lstrip("/") in config.name,
        "id": config.container_id.startswith,
        "status": lambda v: v == container.state.status.value,
    }
    for key, values in filters.items():
        if key == "label":
            if not params.match_labels(values, config.labels):
                return False
        elif not any(tests[key](v) for v in values):
            return False
    return True


def _refuse_log_options(query: params.Query) -> None:
    """Log options Ferry's plain log file cannot honour: refused, not ignored."""
    for name in ("timestamps", "details"):
        if params.boolean(query, name):
            raise InvalidArgument(f"Ferry's container logs carry no {name}: leave out {name}")
    for name in ("since", "until"):
        if query.get(name, "0") not in ("", "0"):
            raise InvalidArgument(f"Ferry's container logs carry no times: leave out {name}")


def _port_number(text: str, what: str) -> int:
    if not PORT_RE.match(text):
        raise InvalidArgument(f"invalid {what} {text!r}: use a port number from 1 to 65535")
    return int(text)


def _host_ip(text: str, key: str) -> str:
    """The address a port is published on; "" (or 0.0.0.0) for every address of the host."""
    if text in ("", "0.0.0.0"):
        return ""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid host IP {text!r} for port {key}: an IPv4 address") from exc
    if addr.version != 4:
        raise InvalidArgument(f"invalid host IP {text!r} for port {key}: IPv6 is not supported")
    return str(addr)


def published_ports(bindings: dict[str, list[dict[str, str]] | None]) -> tuple[PublishedPort, ...]:
    """HostConfig.PortBindings: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``."""
    ports = []
    for key, entries in bindings.items():
        target_text, _, proto = key.partition("/")
        target = _port_number(target_text, f"port in {key!r} (use PORT[/PROTOCOL])")
        for binding in entries or [{}]:
            published = _port_number(binding.get("HostPort") or target_text, "host port")
            host_ip = _host_ip(binding.get("HostIp", ""), key)
            ports.append(PublishedPort(published, target, proto or "tcp", host_ip))
    return tuple(ports)


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
        name = request.query.get("name", "")
        body = await read_model(request, ContainerCreate)
        container = await self.containers.create(create_request(name, body))
        return web.json_response({"Id": container.config.container_id, "Warnings": []}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        show_all = params.boolean(request.query, "all")
        if params.boolean(request.query, "size"):
            raise InvalidArgument("Ferry does not measure container sizes: leave out --size")
        limit = params.integer(request.query, "limit", 0)  # 0 or less: all (Docker)
        filters = params.filters(request.query, LIST_FILTERS)
        for status in filters.get("status", []):
            if status not in STATUSES:
                raise InvalidArgument(
                    f"invalid filter 'status={quoted(status)[1:-1]}': use {', '.join(STATUSES)}"
                )
        out = []
        for container in self.containers.all():
            if not show_all and container.state.status != Status.RUNNING:
                continue
            if _listed(container, filters):
                out.append(render.container_summary(container, self.containers.network_ref))
        return web.json_response(out[:limit] if limit > 0 else out)

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
        timeout = params.timeout_s(request.query, STOP_TIMEOUT_S)
        sig = params.signal_number(request.query) or signal.SIGTERM
        stopped = await self.containers.stop(request.match_info["id"], timeout, sig)
        return web.Response(status=204 if stopped else 304)

    async def restart(self, request: web.Request) -> web.Response:
        timeout = params.timeout_s(request.query, STOP_TIMEOUT_S)
        sig = params.signal_number(request.query) or signal.SIGTERM
        await self.containers.restart(request.match_info["id"], timeout, sig)
        return web.Response(status=204)

    async def kill(self, request: web.Request) -> web.Response:
        sig = params.signal_number(request.query) or signal.SIGKILL
        await self.containers.kill(request.match_info["id"], sig)
        return web.Response(status=204)

    async def remove(self, request: web.Request) -> web.Response:
        force = params.boolean(request.query, "force")
        if params.boolean(request.query, "v") or params.boolean(request.query, "link"):
            raise InvalidArgument("Ferry has no volumes or links: leave out -v and --link")
        await self.containers.remove(request.match_info["id"], force)
        return web.Response(status=204)

    async def wait(self, request: web.Request) -> web.StreamResponse:
        # Docker answers the headers at once and the body when the container ends: the docker
        # CLI waits for those headers before it starts the container (``run``).
        condition = params.wait_condition(request.query)
        container = self.containers.find(request.match_info["id"])
        waiting = self.containers.exit_future(
            container.config.container_id, next_exit=condition in ("next-exit", "removed")
        )
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        code = await waiting
        with contextlib.suppress(ConnectionResetError):
            await response.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
        return response

    async def resize(self, request: web.Request) -> web.Response:
        # Ferry allocates no TTY to resize; the sizes are still checked, as Docker does
        for name in ("h", "w"):
            params.integer(request.query, name, 0, minimum=0, maximum=65535)
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
        follow = params.boolean(request.query, "follow")
        tail = params.tail(request.query)
        _refuse_log_options(request.query)
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
        path = self.containers.store.log_path(cid)
        position = 0
        if tail is not None:
            data = path.read_bytes()
            lines = data.splitlines(keepends=True)
            position = len(data) - sum(len(line) for line in lines[-tail:]) if tail else len(data)
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
        stream = params.boolean(request.query, "stream", True)
        logs = params.boolean(request.query, "logs")
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
        with open(self.containers.store.log_path(cid), "rb") as log:
            if not logs:
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
        body = await read_model(request, ExecCreate)
        if not body.Cmd:
            raise InvalidArgument("No exec command specified")
        check_working_dir(body.WorkingDir)
        exec_env = parse_env(body.Env or [])
        container = self.containers.find(request.match_info["id"])
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        env = bundle.environment(container.config)
        for pair in exec_env:
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
        body = await read_model(request, ExecStart, SMALL_BODY_BYTES)
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
