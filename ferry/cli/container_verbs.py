"""ferry top, stats, cp, rename, pause, unpause, update, export, port, diff, container prune."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from ferry.cli.common import client, fail, for_each, handles_errors, print_table
from ferry.errors import InvalidArgument, NotFound
from ferry.model.runopts import parse_bytes, parse_cpus, parse_restart

container_app = typer.Typer(rich_markup_mode=None, help="Manage containers.", no_args_is_help=True)
KINDS = {0: "C", 1: "A", 2: "D"}


def register(app: typer.Typer) -> None:
    """The verbs as top-level commands (``ferry top``); ``container_app`` has them all once
    this module is imported (``ferry container top``), whoever registers what."""
    for name, fn in _verbs():
        app.command(name)(fn)


def _verbs() -> tuple[tuple[str, Callable[..., None]], ...]:
    return (("top", top), ("stats", stats), ("cp", cp), ("rename", rename), ("pause", pause),
            ("unpause", unpause), ("update", update), ("export", export), ("port", port),
            ("diff", diff))  # fmt: skip


@handles_errors
def top(
    container: Annotated[str, typer.Argument(help="Container")],
    ps_args: Annotated[list[str] | None, typer.Argument(help="ps options (default -ef)")] = None,
) -> None:
    """Display the running processes of a container."""
    out = client().get(f"/containers/{container}/top", ps_args=" ".join(ps_args or []) or None)
    print_table(out["Titles"], out["Processes"])


def _cpu_percent(sample: dict[str, Any]) -> float:
    cpu, pre = sample["cpu_stats"], sample.get("precpu_stats") or {}
    used = cpu["cpu_usage"]["total_usage"] - pre.get("cpu_usage", {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    if used <= 0 or system <= 0:
        return 0.0
    return float(used / system * cpu.get("online_cpus", 1) * 100.0)


def _mib(value: int) -> str:
    return f"{value / (1 << 20):.2f}MiB" if value < 1 << 30 else f"{value / (1 << 30):.2f}GiB"


@handles_errors
def stats(
    containers: Annotated[list[str], typer.Argument(help="Containers")],
    no_stream: Annotated[bool, typer.Option("--no-stream", help="One sample, then exit")] = False,
) -> None:
    """Display containers' resource usage (CPU, memory, network, processes)."""
    api = client(None)
    while True:
        rows = []
        for ref in containers:
            chunk = b"".join(api.stream("GET", f"/containers/{ref}/stats",
                                        query={"stream": 0}))  # fmt: skip
            sample = json.loads(chunk.splitlines()[0])
            memory = sample.get("memory_stats") or {}
            used = memory.get("usage", 0) - memory.get("stats", {}).get("total_inactive_file", 0)
            limit = memory.get("limit", 0)
            nets = sample.get("networks") or {}
            rx = sum(n["rx_bytes"] for n in nets.values())
            tx = sum(n["tx_bytes"] for n in nets.values())
            rows.append([
                sample["id"][:12], sample["name"].lstrip("/"), f"{_cpu_percent(sample):.2f}%",
                f"{_mib(used)} / {_mib(limit)}", f"{used / limit * 100 if limit else 0:.2f}%",
                f"{rx / 1000:.3g}kB / {tx / 1000:.3g}kB",
                str(sample.get("pids_stats", {}).get("current", 0)),
            ])  # fmt: skip
        print_table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                     "PIDS"], rows)  # fmt: skip
        if no_stream:
            return


def _split(ref: str) -> tuple[str, str] | None:
    if ":" in ref and not ref.startswith(("/", ".")):
        container, _, path = ref.partition(":")
        return container, path
    return None


@handles_errors
def cp(
    source: Annotated[str, typer.Argument(help="CONTAINER:PATH, a local path, or -")],
    target: Annotated[str, typer.Argument(help="CONTAINER:PATH, a local path, or -")],
    follow_link: Annotated[
        bool, typer.Option("--follow-link", "-L", help="Follow a symbolic link in SRC_PATH")
    ] = False,
) -> None:
    """Copy files between a container and the local filesystem (Docker's archive API).

    A symbolic link is copied as the link itself, as docker cp does; with -L, what it points
    to (under the link's name)."""
    src, dst = _split(source), _split(target)
    api = client(None)
    if src and not dst:
        path, data = _fetch(api, src[0], src[1], follow_link)
        if target == "-":
            sys.stdout.buffer.write(data)
            return
        name = os.path.basename(path.rstrip("/"))
        try:
            _extract_here(data, target, name, os.path.basename(src[1].rstrip("/")))
        except (tarfile.TarError, OSError) as exc:
            fail(f"copying {source} to {target}: {exc}")
    elif dst and not src:
        container, path = dst
        if source == "-":  # a tar stream on stdin, unpacked into PATH
            body, into = sys.stdin.buffer.read(), path
        elif _is_dir(api, container, path):
            body, into = _tar_of(source, os.path.basename(source.rstrip("/"))), path
        else:  # a new name: unpacked into the parent under PATH's name
            into = os.path.dirname(path.rstrip("/")) or "/"
            body = _tar_of(source, os.path.basename(path.rstrip("/")))
        with tempfile.TemporaryFile() as upload:
            upload.write(body)
            upload.seek(0)
            url = f"/containers/{container}/archive?{urlencode({'path': into})}"
            api.upload(url, upload, method="PUT")
    else:
        fail("copying between two containers, or two local paths, is not supported", 2)


def _is_dir(api: Any, container: str, path: str) -> bool:
    try:
        api.call("HEAD", f"/containers/{container}/archive", query={"path": path})
    except NotFound:
        return False
    return True


def _tar_of(local: str, name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(local, arcname=name)
    return buffer.getvalue()


def _fetch(api: Any, container: str, path: str, follow: bool) -> tuple[str, bytes]:
    """The tar of ``path`` in the container; with ``follow`` (-L), of what a symbolic link
    there points to (relative to the link's directory), link after link, as far as the
    kernel's 40 (ELOOP)."""
    for _ in range(40):
        data = b"".join(api.stream("GET", f"/containers/{container}/archive",
                                   query={"path": path}))  # fmt: skip
        link = _top_link(data) if follow else ""
        if not link:
            return path, data
        path = os.path.normpath(os.path.join(os.path.dirname(path.rstrip("/")), link))
    fail(f"too many levels of symbolic links in {container}:{path}")
    raise AssertionError  # fail() exits


def _top_link(data: bytes) -> str:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        first = archive.next()
    return first.linkname if first is not None and first.issym() else ""


def _keep_links(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Links are made as they are (docker cp copies a link, wherever it points); every
    other member passes tarfile's "data" filter, which also refuses writing through a link
    made before it to outside the target."""
    if member.issym():
        return tarfile.tar_filter(member, dest)
    return tarfile.data_filter(member, dest)


def _extract_here(data: bytes, target: str, name: str, as_name: str) -> None:
    """Unpack what came from the container (its top member ``name``, shown as ``as_name``
    when -L followed a link), refusing members that leave the target."""
    into = target if os.path.isdir(target) else os.path.dirname(target) or "."
    rename = as_name if os.path.isdir(target) else os.path.basename(target)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
        if rename != name:
            for member in members:
                if member.name == name or member.name.startswith(name + "/"):
                    member.name = rename + member.name[len(name) :]
        archive.extractall(into, members=members, filter=_keep_links)


def _each(refs: list[str], path: str) -> None:
    api = client()

    def one(ref: str) -> None:
        api.post(path.format(ref))
        print(ref)

    for_each(refs, one)


@handles_errors
def pause(containers: Annotated[list[str], typer.Argument(help="Containers")]) -> None:
    """Pause all processes within one or more containers (the cgroup freezer)."""
    _each(containers, "/containers/{}/pause")


@handles_errors
def unpause(containers: Annotated[list[str], typer.Argument(help="Containers")]) -> None:
    """Unpause all processes within one or more containers."""
    _each(containers, "/containers/{}/unpause")


@handles_errors
def rename(
    container: Annotated[str, typer.Argument(help="Container")],
    new_name: Annotated[str, typer.Argument(help="New name")],
) -> None:
    """Rename a container."""
    client().post(f"/containers/{container}/rename", None, name=new_name)


@handles_errors
def update(
    containers: Annotated[list[str], typer.Argument(help="Containers")],
    memory: Annotated[str, typer.Option("--memory", "-m", help="Memory limit")] = "",
    memory_reservation: Annotated[str, typer.Option(help="Memory soft limit")] = "",
    cpus: Annotated[str, typer.Option("--cpus", help="Number of CPUs (0: no limit)")] = "",
    cpu_shares: Annotated[int, typer.Option("--cpu-shares", "-c", help="CPU shares")] = 0,
    pids_limit: Annotated[
        int | None, typer.Option("--pids-limit", help="Most processes (0 or -1: unlimited)")
    ] = None,
    restart: Annotated[str, typer.Option("--restart", help="Restart policy")] = "",
) -> None:
    """Update the resources of one or more containers."""
    body = update_body(memory, memory_reservation, cpus, cpu_shares, pids_limit)
    if restart:
        policy = parse_restart(restart)
        body["RestartPolicy"] = {"Name": policy.name.value, "MaximumRetryCount": policy.max_retries}
    api = client()

    def one(ref: str) -> None:
        api.post(f"/containers/{ref}/update", body)
        print(ref)

    for_each(containers, one)


def update_body(
    memory: str, memory_reservation: str, cpus: str, cpu_shares: int, pids_limit: int | None
) -> dict[str, Any]:
    """Docker's update body for ``ferry update``'s options ("" or None: not given). The API
    reads 0 as "not given" (Docker's rule), so a limit is lifted in the words Docker's API
    has for it: ``--cpus 0`` is ``CpuQuota`` -1 (no CPU quota), ``--pids-limit 0`` is
    ``PidsLimit`` -1. A memory limit has none (Docker refuses ``Memory`` -1): refused."""
    if memory and parse_bytes(memory, "--memory") == 0:
        raise InvalidArgument(
            "--memory 0 cannot lift a memory limit (Docker's update has no way to either): "
            "recreate the container without --memory"
        )
    nano_cpus = parse_cpus(cpus) if cpus else 0
    body: dict[str, Any] = {
        "Memory": parse_bytes(memory, "--memory") if memory else 0,
        "MemoryReservation": parse_bytes(memory_reservation) if memory_reservation else 0,
        "NanoCpus": nano_cpus,
        "CpuShares": cpu_shares,
        "PidsLimit": None if pids_limit is None else (pids_limit if pids_limit > 0 else -1),
    }
    if cpus and nano_cpus == 0:
        body["CpuQuota"] = -1
    return body


@handles_errors
def export(
    container: Annotated[str, typer.Argument(help="Container")],
    output: Annotated[str, typer.Option("--output", "-o", help="Write to a file")] = "",
) -> None:
    """Export a container's filesystem as a tar archive."""
    chunks = client(None).stream("GET", f"/containers/{container}/export")
    target = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for chunk in chunks:
            target.write(chunk)
    finally:
        if output:
            target.close()


@handles_errors
def port(
    container: Annotated[str, typer.Argument(help="Container")],
    private: Annotated[str, typer.Argument(help="PORT[/PROTO]")] = "",
) -> None:
    """List port mappings for the container.

    A PORT the container does not publish is an error, as the docker CLI's (27.x), which
    names the port as it was typed: ``No public port '81' published for C``, exit 1."""
    ports = client().get(f"/containers/{container}/json")["NetworkSettings"]["Ports"] or {}
    typed = private
    if private and "/" not in private:
        private += "/tcp"
    shown = []
    for key, bindings in sorted(ports.items()):
        if private and key != private:
            continue
        for binding in bindings or []:
            address = f"{binding['HostIp']}:{binding['HostPort']}"
            shown.append(address if private else f"{key} -> {address}")
    if private and not shown:
        fail(f"No public port '{typed}' published for {container}")
    for line in shown:
        print(line)


@handles_errors
def diff(container: Annotated[str, typer.Argument(help="Container")]) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    for change in client().get(f"/containers/{container}/changes") or []:
        print(f"{KINDS[change['Kind']]} {change['Path']}")


@handles_errors
def prune(
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask")] = False,
) -> None:
    """Remove all stopped containers."""
    del force  # ferry never prompts
    result = client(None).post("/containers/prune")
    deleted = result.get("ContainersDeleted") or []
    if deleted:
        print("Deleted Containers:")
        for cid in deleted:
            print(cid)
        print()
    print(f"Total reclaimed space: {result.get('SpaceReclaimed', 0)}B")


for _name, _fn in _verbs():
    container_app.command(_name)(_fn)
container_app.command("prune")(prune)
