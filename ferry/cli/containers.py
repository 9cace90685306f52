"""ferry run, exec, ps, logs, stop, start, restart, kill, rm, inspect, wait."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from ferry.api.client import ApiClient
from ferry.cli.common import (
    Column,
    FormatOption,
    Inspected,
    ListFormatOption,
    client,
    fail,
    for_each,
    handles_errors,
    parse_filters,
    print_inspected,
    print_rows,
)
from ferry.cli.registry import create_container
from ferry.cli.runflags import HealthFlags, RunFlags, create_body
from ferry.cli.streams import frames, socket_chunks, write_frame
from ferry.errors import FerryError
from ferry.model.times import human_duration

# after the image (or container) every word is the command's, options too; before it an
# unknown option is refused by name (click's "No such option")
CMD_SETTINGS = {"allow_interspersed_args": False}


def register(app: typer.Typer) -> None:
    app.command("run", context_settings=CMD_SETTINGS)(run)
    app.command("exec", context_settings=CMD_SETTINGS)(exec_)
    app.command("ps")(ps)
    app.command("logs")(logs)
    app.command("stop")(stop)
    app.command("start")(start)
    app.command("restart")(restart)
    app.command("kill")(kill)
    app.command("rm")(rm)
    app.command("inspect")(inspect)
    app.command("wait")(wait)
    app.command("attach")(attach)


Strs = list[str] | None


def _opt(*names: str, help: str) -> Any:
    return typer.Option(*names, help=help)


@handles_errors
def run(
    image: Annotated[str, typer.Argument(help="Image (pulled when missing, see --pull)")],
    command: Annotated[Strs, typer.Argument(help="Command and arguments")] = None,
    detach: Annotated[bool, _opt("--detach", "-d", help="Run in the background")] = False,
    name: Annotated[str, _opt("--name", help="Container name")] = "",
    network: Annotated[Strs, _opt("--network", help="Connect to a network")] = None,
    network_alias: Annotated[Strs, _opt("--network-alias", help="Network-scoped alias")] = None,
    ip: Annotated[str, _opt("--ip", help="IPv4 address on the first network")] = "",
    hostname: Annotated[str, _opt("--hostname", "-h", help="Container host name")] = "",
    env: Annotated[Strs, _opt("--env", "-e", help="Set environment variables")] = None,
    rm: Annotated[bool, _opt("--rm", help="Remove the container when it exits")] = False,
    workdir: Annotated[str, _opt("--workdir", "-w", help="Working directory")] = "",
    publish: Annotated[
        Strs, _opt("--publish", "-p", help="Publish a port: [IP:]PUBLISHED:TARGET[/PROTO]")
    ] = None,
    interactive: Annotated[bool, _opt("--interactive", "-i", help="Keep stdin open")] = False,
    tty: Annotated[bool, _opt("--tty", "-t", help="Allocate a pseudo-TTY")] = False,
    user: Annotated[str, _opt("--user", "-u", help="NAME|UID[:GROUP|GID]")] = "",
    entrypoint: Annotated[str | None, _opt("--entrypoint", help="Command to run first")] = None,
    memory: Annotated[str, _opt("--memory", "-m", help="Memory limit (64m, 1g)")] = "",
    memory_reservation: Annotated[str, _opt("--memory-reservation", help="Memory soft limit")] = "",
    cpus: Annotated[str, _opt("--cpus", help="Number of CPUs (1.5)")] = "",
    cpu_shares: Annotated[int, _opt("--cpu-shares", "-c", help="CPU shares (weight)")] = 0,
    pids_limit: Annotated[int, _opt("--pids-limit", help="Most processes at once")] = 0,
    read_only: Annotated[bool, _opt("--read-only", help="Read-only root filesystem")] = False,
    tmpfs: Annotated[Strs, _opt("--tmpfs", help="Mount a tmpfs: PATH[:OPTIONS]")] = None,
    cap_add: Annotated[Strs, _opt("--cap-add", help="Add a Linux capability")] = None,
    cap_drop: Annotated[Strs, _opt("--cap-drop", help="Drop a Linux capability")] = None,
    privileged: Annotated[bool, _opt("--privileged", help="Every capability, no seccomp")] = False,
    init: Annotated[bool, _opt("--init", help="Run an init (tini) as PID 1")] = False,
    stop_signal: Annotated[str, _opt("--stop-signal", help="Signal that stops it")] = "",
    stop_timeout: Annotated[
        int | None, _opt("--stop-timeout", help="Seconds to wait before killing")
    ] = None,
    restart: Annotated[
        str, _opt("--restart", help="no, on-failure[:N], always, unless-stopped")
    ] = "",
    volume: Annotated[Strs, _opt("--volume", "-v", help="SOURCE:TARGET[:ro] or TARGET")] = None,
    mount: Annotated[Strs, _opt("--mount", help="type=bind|volume|tmpfs,source=,target=")] = None,
    security_opt: Annotated[Strs, _opt("--security-opt", help="no-new-privileges…")] = None,
    ulimit: Annotated[Strs, _opt("--ulimit", help="NAME=SOFT[:HARD]")] = None,
    sysctl: Annotated[Strs, _opt("--sysctl", help="Namespaced kernel parameter KEY=V")] = None,
    add_host: Annotated[Strs, _opt("--add-host", help="NAME:IP in /etc/hosts")] = None,
    group_add: Annotated[Strs, _opt("--group-add", help="Additional group")] = None,
    shm_size: Annotated[str, _opt("--shm-size", help="Size of /dev/shm")] = "",
    label: Annotated[Strs, _opt("--label", "-l", help="Label KEY=VALUE")] = None,
    expose: Annotated[Strs, _opt("--expose", help="Expose a port: PORT[/PROTO]")] = None,
    health_cmd: Annotated[str, _opt("--health-cmd", help="Command to check health")] = "",
    health_interval: Annotated[str, _opt("--health-interval", help="Between checks (30s)")] = "",
    health_timeout: Annotated[str, _opt("--health-timeout", help="Time a check may take")] = "",
    health_retries: Annotated[int, _opt("--health-retries", help="Failures to be unhealthy")] = 0,
    health_start_period: Annotated[
        str, _opt("--health-start-period", help="Failures then do not count")
    ] = "",
    no_healthcheck: Annotated[bool, _opt("--no-healthcheck", help="Disable the check")] = False,
    publish_all: Annotated[
        bool, _opt("--publish-all", "-P", help="Publish every exposed port on a random port")
    ] = False,
    pull: Annotated[
        str, _opt("--pull", help="Pull the image: missing (default), always, never")
    ] = "missing",
) -> None:
    """Create and run a new container."""
    flags = RunFlags(
        image, list(command or []), list(network or []), list(network_alias or []), ip,
        hostname, list(env or []), rm, workdir, list(publish or []), interactive, tty, user,
        entrypoint, memory, memory_reservation, cpus, cpu_shares, pids_limit, read_only,
        list(tmpfs or []), list(cap_add or []), list(cap_drop or []), privileged, init,
        stop_signal, stop_timeout, restart, list(volume or []), list(mount or []),
        list(security_opt or []), list(ulimit or []), list(sysctl or []), list(add_host or []),
        list(group_add or []), shm_size, list(label or []), list(expose or []),
        HealthFlags(health_cmd, health_interval, health_timeout, health_retries,
                    health_start_period, no_healthcheck), publish_all,
    )  # fmt: skip
    api = client()
    cid = create_container(api, create_body(flags), name, image, pull)
    if detach:
        _start(api, cid)
        print(cid)
        return
    stdin = "&stdin=1" if interactive else ""
    sock = api.hijack(f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1{stdin}", {})
    waiting = client(None).begin(
        "POST", f"/containers/{cid}/wait", query={"condition": "next-exit"}
    )
    try:
        _start(api, cid)
        if tty:
            _send_size(api, f"/containers/{cid}/resize")
        _stream(sock, interactive=interactive, tty=tty)
    finally:
        sock.close()
    raise typer.Exit(waiting.json()["StatusCode"])


def _send_size(api: ApiClient, path: str) -> None:
    """The terminal's size, as the docker CLI sends it once the process runs."""
    if not sys.stdout.isatty():
        return
    size = os.get_terminal_size(sys.stdout.fileno())
    with contextlib.suppress(FerryError):
        api.post(path, None, h=size.lines, w=size.columns)


def _stream(sock: socket.socket, *, interactive: bool, tty: bool) -> None:
    """The container's output to ours (one stream with a TTY, stdout and stderr apart
    otherwise), our stdin to it with -i, our terminal raw with -it."""
    with _raw_terminal(tty and interactive):
        if interactive:
            threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
        if tty:
            for chunk in socket_chunks(sock.fileno()):
                write_frame(1, chunk)
        else:
            for stream, data in frames(socket_chunks(sock.fileno())):
                write_frame(stream, data)


def _start(api: ApiClient, cid: str) -> None:
    """Start what ``run`` created. One that cannot start stays, created, as in Docker (``ps
    -a`` shows it, with its error in ``inspect``); with ``--rm`` ferryd removes it itself."""
    try:
        api.post(f"/containers/{cid}/start")
    except FerryError as exc:
        fail(str(exc), start_exit_code(str(exc), exc.exit_code))


def start_exit_code(message: str, otherwise: int) -> int:
    """The docker CLI's status for a container whose command could not start (its
    runStartContainerErr): 127 when the command is not found, 126 when it cannot be run;
    ``otherwise`` (the error kind's code) for anything else."""
    if any(s in message for s in ("executable file not found", "no such file or directory")):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return otherwise


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(sys.stdin.fileno())
    # TCSANOW, not setraw's default TCSAFLUSH: what was typed before the terminal turned raw
    # (while the client connected) still reaches the container, as with the docker CLI.
    tty.setraw(sys.stdin.fileno(), termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)


def _pump_stdin(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := os.read(sys.stdin.fileno(), 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)


@handles_errors
def exec_(
    container: Annotated[str, typer.Argument(help="Container name or ID")],
    command: Annotated[list[str], typer.Argument(help="Command and arguments")],
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="Keep stdin open")
    ] = False,
    tty: Annotated[bool, typer.Option("--tty", "-t", help="Allocate a pseudo-TTY")] = False,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background")] = False,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="Environment variables")
    ] = None,
    workdir: Annotated[str, typer.Option("--workdir", "-w", help="Working directory")] = "",
    user: Annotated[str, _opt("--user", "-u", help="NAME|UID[:GROUP|GID]")] = "",
    privileged: Annotated[bool, _opt("--privileged", help="Every capability")] = False,
) -> None:
    """Execute a command in a running container."""
    api = client()
    created = api.post(
        f"/containers/{container}/exec",
        {
            "Cmd": list(command),
            "Tty": tty,
            "AttachStdin": interactive,
            "AttachStdout": not detach,
            "AttachStderr": not detach,
            "Env": list(env or []),
            "WorkingDir": workdir,
            "User": user,
            "Privileged": privileged,
        },
    )
    exec_id = created["Id"]
    if detach:
        api.post(f"/exec/{exec_id}/start", {"Detach": True, "Tty": tty})
        return
    sock = api.hijack(f"/exec/{exec_id}/start", {"Detach": False, "Tty": tty})
    try:
        if tty:
            _send_size(api, f"/exec/{exec_id}/resize")
        _stream(sock, interactive=interactive, tty=tty)
    finally:
        sock.close()
    code = api.get(f"/exec/{exec_id}/json")["ExitCode"]
    raise typer.Exit(code if code is not None else 1)


def _created(created: int) -> str:
    return f"{human_duration(max(0, time.time() - created))} ago"


@handles_errors
def ps(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Show all containers")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only display IDs")] = False,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="name=…, status=…")
    ] = None,
    template: ListFormatOption = "",
) -> None:
    """List containers."""
    filters = parse_filters(filter_ or [])
    containers: list[dict[str, Any]] = client().get(
        "/containers/json", all=all_, filters=filters or None
    )
    if quiet:
        for c in containers:
            print(c["Id"][:12])
        return
    print_rows(PS_COLUMNS, [_ps_row(c) for c in containers], template)


PS_COLUMNS: list[Column] = [
    ("CONTAINER ID", "ID"),
    ("IMAGE", "Image"),
    ("COMMAND", "Command"),
    ("CREATED", "RunningFor"),
    ("STATUS", "Status"),
    ("PORTS", "Ports"),
    ("NAMES", "Names"),
]


def _image_column(c: dict[str, Any]) -> str:
    """The docker CLI's IMAGE: an image id (a container whose image lost its name) short."""
    image, image_id = c["Image"], c.get("ImageID") or ""
    if image_id and image.removeprefix("sha256:")[:12] == image_id.removeprefix("sha256:")[:12]:
        return image_id.removeprefix("sha256:")[:12]
    return str(image)


def _ps_row(c: dict[str, Any]) -> dict[str, Any]:
    """A container as ``ps --format`` placeholders name its parts."""
    command = c["Command"]
    command = command if len(command) <= 20 else command[:19] + "…"
    ports = ", ".join(
        f"{p['IP']}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}" for p in c["Ports"]
    )
    return {
        "ID": c["Id"][:12],
        "Image": _image_column(c),
        "Command": f'"{command}"',
        "CreatedAt": dt.datetime.fromtimestamp(c["Created"], dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S +0000 UTC"
        ),
        "RunningFor": _created(c["Created"]),
        "Ports": ports,
        "State": c["State"],
        "Status": c["Status"],
        "Names": ",".join(n.lstrip("/") for n in c["Names"]),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((c.get("Labels") or {}).items())),
        "Networks": ",".join(sorted(c["NetworkSettings"]["Networks"])),
    }


@handles_errors
def logs(
    container: Annotated[str, typer.Argument(help="Container name or ID")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow log output")] = False,
    tail: Annotated[str, typer.Option("--tail", "-n", help="Lines from the end, or 'all'")] = "all",
    timestamps: Annotated[bool, _opt("--timestamps", "-t", help="Show timestamps")] = False,
    since: Annotated[str, _opt("--since", help="Since a time or a duration (10m)")] = "",
    until: Annotated[str, _opt("--until", help="Until a time or a duration (10m)")] = "",
) -> None:
    """Fetch the logs of a container."""
    chunks = client(None).stream(
        "GET",
        f"/containers/{container}/logs",
        query={
            "stdout": 1, "stderr": 1, "follow": int(follow), "tail": tail,
            "timestamps": int(timestamps), "since": since, "until": until,
        },
    )  # fmt: skip
    for stream, data in frames(chunks):
        write_frame(stream, data)


def _each(containers: list[str], method: str, path: str, **query: Any) -> None:
    api = client()

    def one(ref: str) -> None:
        api.call(method, path.format(ref), query=query)
        print(ref)

    for_each(containers, one)


@handles_errors
def stop(
    containers: Annotated[list[str], typer.Argument(help="Containers")],
    time: Annotated[int, typer.Option("--time", "-t", help="Seconds to wait before killing")] = 10,
) -> None:
    """Stop one or more running containers."""
    _each(containers, "POST", "/containers/{}/stop", t=time)


@handles_errors
def start(containers: Annotated[list[str], typer.Argument(help="Containers")]) -> None:
    """Start one or more stopped containers."""
    _each(containers, "POST", "/containers/{}/start")


@handles_errors
def restart(
    containers: Annotated[list[str], typer.Argument(help="Containers")],
    time: Annotated[int, typer.Option("--time", "-t", help="Seconds to wait before killing")] = 10,
) -> None:
    """Restart one or more containers."""
    _each(containers, "POST", "/containers/{}/restart", t=time)


@handles_errors
def kill(
    containers: Annotated[list[str], typer.Argument(help="Containers")],
    signal: Annotated[str, typer.Option("--signal", "-s", help="Signal to send")] = "KILL",
) -> None:
    """Kill one or more running containers."""
    _each(containers, "POST", "/containers/{}/kill", signal=signal)


@handles_errors
def rm(
    containers: Annotated[list[str], typer.Argument(help="Containers")],
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Kill and remove a running one")
    ] = False,
    volumes: Annotated[bool, _opt("--volumes", "-v", help="Remove anonymous volumes")] = False,
) -> None:
    """Remove one or more containers."""
    _each(containers, "DELETE", "/containers/{}", force=force, v=volumes)


@handles_errors
def inspect(
    containers: Annotated[list[str], typer.Argument(help="Containers")],
    template: FormatOption = "",
) -> None:
    """Display detailed information on one or more containers."""
    api = client()
    inspected = Inspected(api, [f"/containers/{c}/json" for c in containers])
    print_inspected(inspected.found, template)
    inspected.fail_for_missing()


@handles_errors
def wait(containers: Annotated[list[str], typer.Argument(help="Containers")]) -> None:
    """Block until containers stop, then print their exit codes."""
    api = client(None)
    for ref in containers:
        print(api.post(f"/containers/{ref}/wait")["StatusCode"])


@handles_errors
def attach(
    container: Annotated[str, typer.Argument(help="Container name or ID")],
    no_stdin: Annotated[bool, _opt("--no-stdin", help="Do not attach stdin")] = False,
) -> None:
    """Attach to a running container's output (and its stdin and terminal, when it has them);
    ends when the container does, with its exit code."""
    api = client()
    config = api.get(f"/containers/{container}/json")["Config"]
    interactive = bool(config["OpenStdin"]) and not no_stdin
    tty = bool(config["Tty"])
    stdin = "&stdin=1" if interactive else ""
    sock = api.hijack(f"/containers/{container}/attach?stream=1&stdout=1&stderr=1{stdin}", {})
    try:
        if tty:
            _send_size(api, f"/containers/{container}/resize")
        _stream(sock, interactive=interactive, tty=tty)
    finally:
        sock.close()
    code = client(None).post(f"/containers/{container}/wait")["StatusCode"]
    raise typer.Exit(code)
