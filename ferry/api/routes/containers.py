"""/containers, /exec: standalone containers in Docker's shapes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import signal
import socket
import time
from typing import Any

from aiohttp import web

from ferry.agent.container_requests import CreateRequest
from ferry.agent.containers import ContainerService
from ferry.api import list_filters as lf
from ferry.api import params, render
from ferry.api.body import SMALL_BODY_BYTES, read_model
from ferry.api.hijack import closed_on_error, frame, hijack
from ferry.api.models.containers import ContainerCreate, ExecCreate, ExecStart
from ferry.api.run_options import run_options
from ferry.api.server import add_route
from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.model.container import (
    NETWORK_BRIDGE,
    NETWORK_HOST,
    NETWORK_NONE,
    NetworkChoice,
    PublishedPort,
    Status,
)
from ferry.model.filters import matches as filters_match
from ferry.model.rules import check_working_dir, parse_env
from ferry.runtime import logs as logfile
from ferry.runtime.execs import ExecService

FOLLOW_POLL_S = 0.05
ATTACH_STREAMS = {2: 1, 3: 2}  # conmon's pipe numbers → Docker's stream numbers
PORT_RE = re.compile(r"^[0-9]{1,5}$")


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
    host = body.HostConfig
    networks, mode = _networks(body)
    ports = published_ports(host.PortBindings or {}) if host else ()
    return CreateRequest(
        image=body.Image,
        ports=ports,
        cmd=tuple(body.Cmd or ()),
        entrypoint=None if body.Entrypoint is None else tuple(body.Entrypoint),
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


def _port_number(text: str, what: str) -> int:
    if not PORT_RE.match(text) or not 1 <= int(text) <= 65535:
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
    """HostConfig.PortBindings: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``; an
    empty HostPort is published 0, given a free ephemeral port at create (Docker's rule)."""
    ports = []
    for key, entries in bindings.items():
        target_text, _, proto = key.partition("/")
        target = _port_number(target_text, f"port in {key!r} (use PORT[/PROTOCOL])")
        for binding in entries or [{}]:
            host_port = binding.get("HostPort") or ""
            # no host port (docker run -p 80): one of the ephemeral range, chosen at create
            published = _port_number(host_port, "host port") if host_port else 0
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
        add_route(app, "POST", "/exec/{id}/resize", self.exec_resize)

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
        filters = lf.with_since_before(
            params.filters(request.query, lf.CONTAINER_FILTERS), request.query
        )
        # every value is checked, and every before/since resolved (NotFound), whatever
        # ``all`` and ``limit`` say and whatever containers there are: Docker refuses a wrong
        # filter in any case (moby daemon/list.go checks them before it looks at containers)
        implies_all = lf.check_container_filters(filters)
        created = lf.reference_times(filters, self._created_at)
        show_all = show_all or limit > 0 or implies_all
        out = []
        for container in self.containers.all():
            if not show_all and container.state.status != Status.RUNNING:
                continue
            image = self.containers.listed_image(container.config)
            summary = render.container_summary(container, self.containers.network_ref, image)
            rules = lf.container_rules(container, summary, self._image_id, created.__getitem__)
            if filters_match(filters, rules):
                out.append(summary)
        return web.json_response(out[:limit] if limit > 0 else out)

    def _image_id(self, ref: str) -> str:
        """The image a reference names, "" for none (Docker's ancestor skips it)."""
        try:
            return self.containers.images.lookup(ref)
        except (NotFound, InvalidArgument):
            return ""

    def _created_at(self, ref: str) -> str:
        return self.containers.find(ref).config.created_at

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
        timeout = params.timeout_s(request.query, None)
        sig = params.signal_number(request.query)
        stopped = await self.containers.stop(request.match_info["id"], timeout, sig)
        return web.Response(status=204 if stopped else 304)

    async def restart(self, request: web.Request) -> web.Response:
        timeout = params.timeout_s(request.query, None)
        sig = params.signal_number(request.query)
        await self.containers.restart(request.match_info["id"], timeout, sig)
        return web.Response(status=204)

    async def kill(self, request: web.Request) -> web.Response:
        sig = params.signal_number(request.query) or signal.SIGKILL
        await self.containers.kill(request.match_info["id"], sig)
        return web.Response(status=204)

    async def remove(self, request: web.Request) -> web.Response:
        force = params.boolean(request.query, "force")
        volumes = params.boolean(request.query, "v")
        if params.boolean(request.query, "link"):
            raise InvalidArgument("Ferry has no links: leave out --link")
        await self.containers.remove(request.match_info["id"], force, volumes)
        return web.Response(status=204)

    async def wait(self, request: web.Request) -> web.StreamResponse:
        # Docker answers the headers at once and the body when the container ends: the docker
        # CLI waits for those headers before it starts the container (``run``).
        condition = params.wait_condition(request.query)
        container = self.containers.find(request.match_info["id"])
        waiting = self.containers.exit_future(container.config.container_id, condition)
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
        follow = params.boolean(request.query, "follow")
        timestamps = params.boolean(request.query, "timestamps")
        tail = params.tail(request.query)
        if params.boolean(request.query, "details"):
            raise InvalidArgument(
                "Ferry's container logs carry no details (log labels): leave out details"
            )
        streams = params.output_streams(request.query)
        if not streams:
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        now = time.time()
        since = logfile.parse_since(request.query.get("since", ""), now)
        until = logfile.parse_since(request.query.get("until", ""), now)
        lines = -1 if tail is None else tail
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
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
            if follow and not until:
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
        not started yet, the stream is connected before its command runs (``docker run``).
        Only the streams asked for are sent (``stdout``, ``stderr``; the docker CLI's
        ``run -a``); a terminal's output is stdout's."""
        want_stdin = params.boolean(request.query, "stdin")
        streams = params.output_streams(request.query)
        with_logs = params.boolean(request.query, "logs")
        stream = params.boolean(request.query, "stream", True)
        container = self.containers.find(request.match_info["id"])
        cid = container.config.container_id
        tty = container.config.tty
        stdin: asyncio.Queue[bytes | None] | None = None
        if want_stdin and container.config.open_stdin:
            stdin = asyncio.Queue()
        if with_logs:
            log = self.containers.store.log_path(cid).read_bytes()
            backlog, _ = logfile.parse(log)
        else:
            backlog = []
        response = await hijack(request, tty=tty, stdin=stdin)
        with closed_on_error(request), contextlib.suppress(ConnectionResetError):
            for record in backlog:
                if record.stream in streams:
                    await response.write(record.data if tty else frame(record.stream, record.data))
            if stream:
                sock = await self.containers.attach_socket(cid)
                if sock is not None:
                    with sock:
                        await _relay(sock, response, stdin, tty, streams)
        return response

    async def exec_create(self, request: web.Request) -> web.Response:
        body = await read_model(request, ExecCreate)
        if not body.Cmd:
            raise InvalidArgument("No exec command specified")
        check_working_dir(body.WorkingDir)
        exec_env = parse_env(body.Env or [])  # refused here, before anything is looked up
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
            list(exec_env),
            tty=body.Tty,
            attach_stdin=body.AttachStdin,
            workdir=body.WorkingDir,
            user=body.User,
            privileged=body.Privileged,
            output=frozenset(
                n for n, wanted in ((1, body.AttachStdout), (2, body.AttachStderr)) if wanted
            ),
        )
        return web.json_response({"Id": instance.exec_id}, status=201)

    async def exec_start(self, request: web.Request) -> web.StreamResponse:
        body = await read_model(request, ExecStart, SMALL_BODY_BYTES)
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
            if stream not in instance.output:  # not attached (Docker's AttachStdout/-Stderr)
                return
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
                "OpenStdout": 1 in instance.output,
                "OpenStderr": 2 in instance.output,
                "ProcessConfig": {
                    "tty": instance.tty,
                    "entrypoint": instance.cmd[0],
                    "arguments": instance.cmd[1:],
                    "privileged": instance.privileged,
                    "user": instance.user,
                },
            }
        )


def _size(request: web.Request) -> tuple[int, int]:
    """A terminal's ``h`` and ``w`` (Docker's resize), each 0 to 65535."""
    height = params.integer(request.query, "h", 0, minimum=0, maximum=65535)
    width = params.integer(request.query, "w", 0, minimum=0, maximum=65535)
    return height, width


async def _relay(
    sock: socket.socket,
    response: web.StreamResponse,
    stdin: asyncio.Queue[bytes | None] | None,
    tty: bool,
    streams: frozenset[int],
) -> None:
    """Between the monitor's attach socket and a hijacked client: output packets (first byte:
    the stream) of the ``streams`` asked for to the client, the client's input to the
    container's stdin, until the container's output ends."""
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
            if stream not in streams:
                continue
            data = packet[1:]
            await response.write(data if tty else frame(stream, data))
    finally:
        if feeder is not None:
            feeder.cancel()
