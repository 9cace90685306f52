"""/containers, /exec: standalone containers in Docker's shapes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from typing import Any

from aiohttp import web

from ferry.agent.container_requests import CreateRequest, parse_signal
from ferry.agent.containers import ContainerService
from ferry.api import render
from ferry.api.hijack import closed_on_error, frame, hijack
from ferry.api.models.containers import ContainerCreate, ExecCreate, ExecStart
from ferry.api.run_options import run_options
from ferry.api.server import add_route, query_bool, query_filters, read_json
from ferry.errors import Conflict, InvalidArgument
from ferry.model.container import (
    NETWORK_BRIDGE,
    NETWORK_HOST,
    NETWORK_NONE,
    NetworkChoice,
    PublishedPort,
    Status,
    parse_env,
)
from ferry.runtime import logs as logfile
from ferry.runtime.execs import ExecService

FOLLOW_POLL_S = 0.05
ATTACH_STREAMS = {2: 1, 3: 2}  # conmon's pipe numbers → Docker's stream numbers


def _networks(body: ContainerCreate) -> tuple[tuple[NetworkChoice, ...], str]:
    """The networks a create body asks for, and the mode: Docker's ``default`` (what the
    docker CLI sends without --network) is the ``bridge`` network; ``host`` and ``none`` are
    modes, not networks, and take no other network."""
    host = body.HostConfig
    endpoints = (body.NetworkingConfig.EndpointsConfig or {}) if body.NetworkingConfig else {}
    mode = (host.NetworkMode if host else "") or "default"
    if mode == "default":
        mode = NETWORK_BRIDGE
    if mode not in (NETWORK_HOST, NETWORK_NONE) and mode not in endpoints:
        endpoints = {mode: None, **endpoints}
    networks = []
    for net_name, settings in endpoints.items():
        if net_name in ("default", NETWORK_HOST, NETWORK_NONE):
            continue
        aliases = tuple(settings.Aliases or []) if settings else ()
        ip = settings.IPAMConfig.IPv4Address if settings and settings.IPAMConfig else ""
        networks.append(NetworkChoice(net_name, aliases, ip))
    if mode in (NETWORK_HOST, NETWORK_NONE):
        return tuple(networks), mode
    return tuple(networks), ""


def create_request(name: str, body: ContainerCreate) -> CreateRequest:
    cmd = tuple((body.Entrypoint or []) + (body.Cmd or []))
    host = body.HostConfig
    networks, mode = _networks(body)
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
        networks=networks,
        network_mode=mode,
        auto_remove=bool(host and host.AutoRemove),
        labels=body.Labels,
        working_dir=body.WorkingDir,
        **run_options(body),
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
        add_route(app, "POST", "/exec/{id}/resize", self.exec_resize)

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
        stopped = await self.containers.stop(request.match_info["id"], _timeout(request))
        return web.Response(status=204 if stopped else 304)

    async def restart(self, request: web.Request) -> web.Response:
        await self.containers.restart(request.match_info["id"], _timeout(request))
        return web.Response(status=204)

    async def kill(self, request: web.Request) -> web.Response:
        sig = parse_signal(request.query.get("signal", ""), signal.SIGKILL)
        await self.containers.kill(request.match_info["id"], sig)
        return web.Response(status=204)

    async def remove(self, request: web.Request) -> web.Response:
        await self.containers.remove(
            request.match_info["id"], query_bool(request, "force"), query_bool(request, "v")
        )
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

    async def resize(self, request: web.Request) -> web.Response:
        height, width = _size(request)
        self.containers.resize(request.match_info["id"], height, width)
        return web.Response(status=200)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        """Docker's logs: each record on its stream, ``timestamps``, ``since``, ``until``,
        ``tail``, ``follow`` (until the container ends); a TTY's output is sent raw."""
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
        now = time.time()
        streams = frozenset(
            n for n, key in ((1, "stdout"), (2, "stderr")) if query_bool(request, key)
        ) or frozenset({1, 2})
        since = logfile.parse_since(request.query.get("since", ""), now)
        until = logfile.parse_since(request.query.get("until", ""), now)
        timestamps = query_bool(request, "timestamps")
        tail = request.query.get("tail", "all")
        lines = int(tail) if tail.lstrip("-").isdigit() else -1
        # opened early: a container run with --rm takes its log with it when it ends, and an
        # open file can still be read to the end
        log = open(self.containers.store.log_path(cid), "rb")  # noqa: SIM115 - closed below
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.docker.multiplexed-stream"}
        )
        await response.prepare(request)
        raw = container.config.tty

        async def emit(records: list[logfile.LogRecord]) -> None:
            for record in logfile.select(records, streams=streams, since_s=since, until_s=until):
                data = logfile.render(record, timestamps)
                await response.write(data if raw else frame(record.stream, data))

        with log, contextlib.suppress(ConnectionResetError):
            records, used = logfile.parse(log.read())
            log.seek(used)
            await emit(logfile.tail(records, lines))
            if query_bool(request, "follow") and not until:
                await self._follow(cid, log, emit)
        return response

    async def _follow(self, cid: str, log: Any, emit: Any) -> None:
        """Records as they are written, until the container has ended and all is read."""
        pending = b""
        while True:
            running = self.containers.is_running(cid)
            pending += log.read()
            records, used = logfile.parse(pending)
            pending = pending[used:]
            if records:
                await emit(records)
            elif not running:
                return
            else:
                await asyncio.sleep(FOLLOW_POLL_S)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """Docker's attach: the container's output live (and, with ``logs``, what it wrote
        before), its stdin from the client when it was created with ``-i``. For a container
        not started yet, the stream is connected before its command runs (``docker run``)."""
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
        tty = container.config.tty
        stdin: asyncio.Queue[bytes | None] | None = None
        if query_bool(request, "stdin") and container.config.open_stdin:
            stdin = asyncio.Queue()
        if query_bool(request, "logs"):
            log = self.containers.store.log_path(cid).read_bytes()
            backlog, _ = logfile.parse(log)
        else:
            backlog = []
        response = await hijack(request, tty=tty, stdin=stdin)
        with closed_on_error(request), contextlib.suppress(ConnectionResetError):
            for record in backlog:
                await response.write(record.data if tty else frame(record.stream, record.data))
            if query_bool(request, "stream", True):
                sock = await self.containers.attach_socket(cid)
                if sock is not None:
                    with sock:
                        await _relay(sock, response, stdin, tty)
        return response

    async def exec_create(self, request: web.Request) -> web.Response:
        body = ExecCreate.model_validate(await read_json(request))
        container = self.containers.find(request.match_info["id"])
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        if container.state.paused:
            raise Conflict(
                f"Container {container.config.container_id} is paused, unpause the container "
                "before exec"
            )
        instance = self.execs.create(
            container.config.container_id,
            body.Cmd,
            list(parse_env(body.Env or [])),
            tty=body.Tty,
            attach_stdin=body.AttachStdin,
            workdir=body.WorkingDir,
            user=body.User,
            privileged=body.Privileged,
        )
        return web.json_response({"Id": instance.exec_id}, status=201)

    async def exec_start(self, request: web.Request) -> web.StreamResponse:
        body = ExecStart.model_validate(await read_json(request))
        instance = self.execs.get(request.match_info["id"])
        container = self.containers.find(instance.container_id)
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        if body.Detach:
            self.execs.run_detached(instance, container)
            return web.Response(status=200)
        response = await hijack(
            request, instance.tty, instance.stdin_queue if instance.attach_stdin else None
        )

        async def sink(stream: int, data: bytes) -> None:
            with contextlib.suppress(ConnectionResetError):
                await response.write(data if instance.tty else frame(stream, data))

        with closed_on_error(request):
            await self.execs.run(instance, container, sink)
        return response

    async def exec_resize(self, request: web.Request) -> web.Response:
        height, width = _size(request)
        self.execs.resize(request.match_info["id"], height, width)
        return web.Response(status=200)

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
                    "privileged": instance.privileged,
                    "user": instance.user,
                },
            }
        )


def _timeout(request: web.Request) -> float | None:
    """``t``: seconds to wait before the kill; absent: the container's own stop timeout."""
    value = request.query.get("t")
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidArgument(f"invalid stop timeout {value!r}: use a number of seconds") from exc


def _size(request: web.Request) -> tuple[int, int]:
    try:
        return int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError as exc:
        raise InvalidArgument("invalid terminal size: use whole numbers h and w") from exc


async def _relay(
    sock: socket.socket,
    response: web.StreamResponse,
    stdin: asyncio.Queue[bytes | None] | None,
    tty: bool,
) -> None:
    """Between the monitor's attach socket and a hijacked client: output packets (first byte:
    the stream) to the client, the client's input to the container's stdin, until the
    container's output ends."""
    loop = asyncio.get_running_loop()

    async def feed() -> None:
        assert stdin is not None
        while (data := await stdin.get()) is not None:
            await loop.sock_sendall(sock, data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # the monitor closes the container's stdin

    feeder = asyncio.ensure_future(feed()) if stdin is not None else None
    try:
        while packet := await loop.sock_recv(sock, 65537):
            stream = ATTACH_STREAMS.get(packet[0])
            if stream is None:
                continue
            data = packet[1:]
            await response.write(data if tty else frame(stream, data))
    finally:
        if feeder is not None:
            feeder.cancel()
