"""The container verbs beyond the life cycle: pause/unpause (the freezer), update (cgroup
limits), rename, top, stats (from the cgroups), diff, export, copies in and out, prune.

Design notes. Each verb works on what ``ContainerService`` holds and saves the container's
record through it. A verb that changes a container holds the container's lock and reads it
again under it (``_holding``): a start, an exit or another verb may be changing it meanwhile,
and a save from a copy read before an await undid theirs (a rename during the exit was lost;
an exit while runc froze the container came back as running).

Copies in and out run ``tar`` inside the running container (``runc exec``): paths are
resolved by the container's own kernel view, so a link in it can never lead to the host's
files, and its volumes and tmpfs mounts are part of what is copied, as with Docker. Export
reads the root filesystem's overlay from ferryd's side (tar stores links as links, never
follows them).

Be aware: ``cp`` needs a running container (Docker also copies from stopped ones), and the
image must have ``tar``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shlex
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ferry.agent.containers import ContainerService
from ferry.errors import Conflict, FerryError, InvalidArgument, NotFound
from ferry.kernel import cgroups, mounts
from ferry.model.container import Container
from ferry.model.network import GWBRIDGE
from ferry.model.rules import check_container_name
from ferry.model.runopts import Resources, RestartPolicy
from ferry.model.times import now_iso
from ferry.runtime import changes, oci
from ferry.runtime.images import Image

GO_MODE_DIR = 1 << 31  # Go's os.ModeDir, as docker cp reads the stat header
GO_MODE_SYMLINK = 1 << 27
CHUNK = 1 << 16


class ContainerVerbs:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.runner = containers.runner

    @contextlib.asynccontextmanager
    async def _holding(self, ref: str) -> AsyncIterator[Container]:
        """The container ``ref`` names, read under its lock (see the module notes). Raises
        NotFound, also when it was removed while this waited for the lock."""
        cid = self.containers.find(ref).config.container_id
        async with self.containers.lock(cid):
            yield self.containers.find(cid)

    @staticmethod
    def _check_running(container: Container) -> Container:
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        return container

    def _running(self, ref: str) -> Container:
        container = self.containers.find(ref)
        if not container.running:
            raise Conflict(f"Container {container.config.container_id} is not running")
        return container

    def _copyable(self, ref: str) -> Container:
        """A container cp can reach: running and not paused (the copy is a process inside
        it, which a frozen cgroup would hold for ever)."""
        container = self._running(ref)
        if container.state.paused:
            raise Conflict(
                f"Container {container.config.name} is paused: Ferry copies files through a "
                "process inside it, unpause it first"
            )
        return container

    def _save(self, container: Container) -> None:
        self.containers.store.save_config(container.config)
        self.containers.replace(container)

    # freezer ---------------------------------------------------------------------------------
    async def pause(self, ref: str) -> None:
        async with self._holding(ref) as container:
            self._check_running(container)
            if container.state.paused:
                raise Conflict(f"Container {container.config.container_id} is already paused")
            await self.runner.runc.pause(container.config.container_id)
            self._save(replace(container, state=replace(container.state, paused=True)))
        self.containers.event(container, "pause")

    async def unpause(self, ref: str) -> None:
        async with self._holding(ref) as container:
            self._check_running(container)
            if not container.state.paused:
                raise Conflict(f"Container {container.config.container_id} is not paused")
            await self.runner.runc.resume(container.config.container_id)
            self._save(replace(container, state=replace(container.state, paused=False)))
        self.containers.event(container, "unpause")

    # update / rename -------------------------------------------------------------------------
    async def update(
        self, ref: str, resources: Resources | None, restart: RestartPolicy | None
    ) -> None:
        """New cgroup limits (applied at once to a running container) and restart policy."""
        async with self._holding(ref) as container:
            await self._update(container, resources, restart)

    async def _update(
        self, container: Container, resources: Resources | None, restart: RestartPolicy | None
    ) -> None:
        config = container.config
        if restart is not None:
            if config.auto_remove and restart.name.value != "no":
                raise InvalidArgument("Conflicting options: --restart and --rm")
            config = replace(config, restart=restart)
        if resources is not None:
            resources = resources.plain()
            resources.check(len(os.sched_getaffinity(0)))
            config = replace(config, resources=resources)
            if container.running:
                await self.runner.runc.update(config.container_id, oci.plan_update(resources))
        self._save(replace(container, config=config))

    async def rename(self, ref: str, new_name: str) -> None:
        async with self._holding(ref) as container:
            self._rename(container, new_name)

    def _rename(self, container: Container, new_name: str) -> None:
        new_name = new_name.lstrip("/")
        check_container_name(new_name)
        if new_name == container.config.name:
            raise Conflict("Renaming a container with the same name as its current name")
        for other in self.containers.all():
            if other.config.name == new_name:
                raise Conflict(
                    f'Conflict. The container name "/{new_name}" is already in use by '
                    f'container "{other.config.container_id}". You have to remove (or rename) '
                    "that container to be able to reuse that name."
                )
        for choice in container.config.networks:  # a name in DNS there: no service's
            try:
                network = self.containers.nets.network(choice.network)
            except FerryError:
                continue  # removed since: no name of the container's is served there
            self.containers.nets.check_names(network, (new_name,))
        swarm_eps = [
            ep for ep in container.state.endpoints
            if ep.net_id != GWBRIDGE and not self.containers.is_local_network(ep.net_id)
        ]  # fmt: skip
        if swarm_eps:
            raise Conflict(
                f"container {container.config.name} is running on swarm network "
                f"{swarm_eps[0].net_name}, whose records carry its name: stop it, rename it, "
                "start it"
            )
        config = replace(container.config, name=new_name)
        self._save(replace(container, config=config))
        if container.running:
            self.runner.write_files(config, container.state.endpoints)
        self.containers.changed()
        self.containers.event(
            replace(container, config=config), "rename", oldName="/" + container.config.name
        )

    # top / stats -----------------------------------------------------------------------------
    async def top(self, ref: str, ps_args: str = "") -> dict[str, Any]:
        """Docker's top: ``ps`` on the host, its rows kept for the container's processes."""
        container = self._running(ref)
        pids = {str(p) for p in await self.runner.runc.pids(container.config.container_id)}
        args = shlex.split(ps_args) if ps_args else ["-ef"]
        process = await asyncio.create_subprocess_exec(
            "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise InvalidArgument(f"ps {ps_args}: {err.decode(errors='replace').strip()}")
        lines = out.decode(errors="replace").splitlines()
        titles = lines[0].split()
        if "PID" not in titles:
            raise InvalidArgument(f"Couldn't find PID field in ps output (ps {ps_args})")
        column = titles.index("PID")
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > column and fields[column] in pids:
                rows.append(fields)
        return {"Titles": titles, "Processes": rows}

    def stats_once(self, container: Container) -> dict[str, Any]:
        """One sample in Docker's stats shape, from the container's cgroups."""
        config = container.config
        read = cgroups.stats(self.runner.cgroups_path(config))
        return {
            "read": now_iso(),
            "name": f"/{config.name}",
            "id": config.container_id,
            "pids_stats": {"current": read.pids_current, **(
                {"limit": read.pids_limit} if read.pids_limit else {})},
            "cpu_stats": {
                "cpu_usage": {"total_usage": read.cpu_usage_ns},
                "system_cpu_usage": cgroups.system_cpu_usage_ns(),
                "online_cpus": os.cpu_count() or 1,
            },
            "memory_stats": {
                "usage": read.memory_usage_bytes,
                "limit": min(read.memory_limit_bytes, _host_memory()) or _host_memory(),
                "stats": {"total_inactive_file": read.memory_cache_bytes},
            },
            "networks": _networks(container.state.pid) if container.running else {},
        }  # fmt: skip

    async def stats(self, ref: str, stream: bool) -> AsyncIterator[dict[str, Any]]:
        """Samples a second apart, each with the one before as ``precpu_stats`` (what the
        docker CLI computes CPU % from); one sample with its predecessor unless ``stream``."""
        container = self.containers.find(ref)
        cid = container.config.container_id
        previous = self.stats_once(container) if container.running else {}
        while True:
            await asyncio.sleep(1.0)
            current_container = self.containers.get(cid)
            if current_container is None:
                return
            sample = (
                self.stats_once(current_container) if current_container.running else _empty(
                    current_container)
            )  # fmt: skip
            sample["precpu_stats"] = previous.get("cpu_stats", {})
            yield sample
            if not stream:
                return
            previous = sample

    # diff / export ---------------------------------------------------------------------------
    def changes(self, ref: str) -> list[dict[str, object]]:
        container = self.containers.find(ref)
        upper = self.containers.store.dir(container.config.container_id) / "upper"
        image = self._image(container)
        lowers = image.layers if image is not None else ()
        entries = changes.walk_upper(upper)
        ignore = changes.RUNTIME_PATHS | {m.target.rstrip("/") for m in container.config.mounts}
        in_image = changes.in_lower(lowers) if lowers else lambda _p: False
        return changes.plan_changes(entries, in_image, ignore)

    def _image(self, container: Container) -> Image | None:
        try:
            return self.containers.image_of(container.config)
        except NotFound:
            return None

    async def export(self, ref: str) -> AsyncIterator[bytes]:
        """The container's root filesystem as a tar stream (``docker export``)."""
        container = self.containers.find(ref)
        config = container.config
        rootfs = self.runner.rootfs(config)
        mounted_here = False
        if not mounts.is_mounted(rootfs):
            image = self._image(container)
            if image is None:
                raise NotFound(f"image {config.image} of {config.name} is gone: cannot export")
            directory = self.containers.store.dir(config.container_id)
            mounts.mount_overlay(
                image.layers or (image.rootfs,), directory / "upper", directory / "work", rootfs
            )
            mounted_here = True
        try:
            async for chunk in _stream(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", "-",
                                        "."]):  # fmt: skip
                yield chunk
        finally:
            if mounted_here and not self.containers.is_running(config.container_id):
                mounts.unmount(rootfs)

    # cp --------------------------------------------------------------------------------------
    async def _exec(self, container: Container, argv: list[str]) -> list[str]:
        """``runc exec`` argv of ``argv`` inside the container as root in /."""
        process = oci.plan_process(
            container.config, oci.ResolvedUser(), self.runner.host, args=argv,
            env=[f"PATH={oci.DEFAULT_PATH}"], cwd="/", terminal=False, privileged=False,
        )  # fmt: skip
        bundle = self.runner.paths(container.config).bundle
        path = bundle / f"cp-{os.urandom(6).hex()}.json"
        path.write_text(json.dumps(process))
        return self.runner.runc.exec_argv(container.config.container_id, path)

    async def stat(self, ref: str, path: str) -> dict[str, Any]:
        """Docker's path stat (name, size, mode as Go's FileMode, mtime, link target)."""
        container = self._copyable(ref)
        _check_path(path)
        argv = await self._exec(container, ["stat", "-c", "%n\t%s\t%f\t%Y\t%N", "--", path])
        out = await _collect(argv)
        if out is None:
            raise NotFound(f"Could not find the file {path} in container {container.config.name}")
        name, size, raw_mode, mtime, quoted = out.rstrip("\n").split("\t", 4)
        mode = int(raw_mode, 16)
        go_mode = mode & 0o777
        if mode & 0o170000 == 0o040000:
            go_mode |= GO_MODE_DIR
        link = ""
        if mode & 0o170000 == 0o120000:
            go_mode |= GO_MODE_SYMLINK
            link = quoted.split(" -> ", 1)[1].strip("'\"") if " -> " in quoted else ""
        return {
            "name": os.path.basename(name.rstrip("/")) or "/",
            "size": int(size),
            "mode": go_mode,
            "mtime": _rfc3339(int(mtime)),
            "linkTarget": link,
        }

    async def archive(self, ref: str, path: str) -> AsyncIterator[bytes]:
        """A tar of ``path`` as it is inside the container (``docker cp C:PATH -``)."""
        container = self._copyable(ref)
        _check_path(path)
        parent, base = os.path.split(path.rstrip("/") or "/")
        argv = await self._exec(container, ["tar", "-cf", "-", "-C", parent or "/", base or "."])
        async for chunk in _stream(argv):
            yield chunk

    async def extract(self, ref: str, path: str, body: AsyncIterator[bytes]) -> None:
        """Unpack a tar into directory ``path`` inside the container (``docker cp - C:PATH``)."""
        container = self._copyable(ref)
        _check_path(path)
        info = await self.stat(ref, path)
        if not info["mode"] & GO_MODE_DIR:
            raise InvalidArgument(f"extraction point is not a directory: {path}")
        argv = await self._exec(container, ["tar", "--no-same-owner", "-xf", "-", "-C", path])
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None
        try:
            async for chunk in body:
                process.stdin.write(chunk)
                await process.stdin.drain()
        finally:
            process.stdin.close()
        err = await process.stderr.read() if process.stderr else b""
        if await process.wait() != 0:
            raise InvalidArgument(f"copy into {path} failed: {err.decode(errors='replace')}")

    # prune -----------------------------------------------------------------------------------
    async def prune(
        self, chosen: Callable[[Container], bool] = lambda _: True
    ) -> tuple[list[str], int]:
        """Remove the stopped containers ``chosen`` (by the prune filters); their ids and the
        bytes of their writable layers."""
        removed, freed = [], 0
        for container in self.containers.all():
            if container.running or container.state.restarting or not chosen(container):
                continue
            upper = self.containers.store.dir(container.config.container_id) / "upper"
            freed += sum(p.lstat().st_size for p in upper.rglob("*") if p.is_file())
            try:
                await self.containers.remove(container.config.container_id)
            except FerryError:
                continue
            removed.append(container.config.container_id)
        return removed, freed


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise InvalidArgument(f"path {path!r} must be absolute inside the container")


async def _stream(argv: list[str]) -> AsyncIterator[bytes]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        while chunk := await process.stdout.read(CHUNK):
            yield chunk
    finally:
        if process.returncode is None:
            await process.wait()
        _cleanup_process_file(argv)


async def _collect(argv: list[str]) -> str | None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await process.communicate()
    _cleanup_process_file(argv)
    return out.decode(errors="replace") if process.returncode == 0 else None


def _cleanup_process_file(argv: list[str]) -> None:
    if "--process" in argv:
        Path(argv[argv.index("--process") + 1]).unlink(missing_ok=True)


def _rfc3339(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _networks(pid: int) -> dict[str, Any]:
    """Per-interface counters of the container's network namespace (its /proc/PID/net/dev)."""
    out: dict[str, Any] = {}
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return out
    for line in lines:
        name, _, rest = line.partition(":")
        values = [int(v) for v in rest.split()]
        if name.strip() == "lo" or len(values) < 16:
            continue
        out[name.strip()] = {
            "rx_bytes": values[0], "rx_packets": values[1], "rx_errors": values[2],
            "rx_dropped": values[3], "tx_bytes": values[8], "tx_packets": values[9],
            "tx_errors": values[10], "tx_dropped": values[11],
        }  # fmt: skip
    return out


def _empty(container: Container) -> dict[str, Any]:
    """What Docker's stats say of a container that is not running: zeros."""
    return {
        "read": "0001-01-01T00:00:00Z",
        "name": f"/{container.config.name}",
        "id": container.config.container_id,
        "pids_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0},
        "memory_stats": {},
        "networks": {},
    }
