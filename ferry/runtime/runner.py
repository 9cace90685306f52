"""A container's life on runc: its bundle (root filesystem, files, ``config.json``), its
monitor, start, and what is left to clear when it has ended.

Design notes. The bundle is the container's directory (``runtime.store``): ``rootfs`` is an
overlay of its image (image read-only below, the container's ``upper`` above) mounted in
ferryd's mount namespace before runc takes it, so a container keeps its changes across stop
and start, as in Docker; ``config.json`` is ``oci.plan_config`` of the container's config, with
the user resolved in the image and each volume resolved to its directory. ``launch`` starts
the monitor (conmon), which runs ``runc create``; ``start`` runs the command; ``cleanup``
removes runc's record and cgroups and unmounts the root. Everything runc knows lives under
``--root <run dir>/runc``, and cgroups under ``/ferry/<netns prefix>``, which is what lets
``lab down`` find what a killed host left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ferry.errors import InvalidArgument, NotFound
from ferry.kernel import cgroups, mounts
from ferry.model.container import NETWORK_HOST, AttachedEndpoint, Container, ContainerConfig
from ferry.model.network import GWBRIDGE
from ferry.model.runopts import CAPABILITIES, MountSpec, MountType
from ferry.runtime import monitor, oci, task_files
from ferry.runtime.images import Image
from ferry.runtime.runc import RUNC, Runc
from ferry.runtime.seccomp import docker_default_profile
from ferry.runtime.store import ContainerStore
from ferry.runtime.users import resolve_user
from ferry.runtime.volumes import VolumeStore, check_bind_source

DNS_ADDR = "127.0.0.11"
TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev")  # Docker's --tmpfs defaults
FILES_DIR = "files"  # in a container's directory: the tmpfs of its secrets and configs

_HOSTS_HEAD = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def hosts_file(config: ContainerConfig, endpoints: tuple[AttachedEndpoint, ...]) -> str:
    lines = [_HOSTS_HEAD]
    for entry in config.extra_hosts:  # --add-host NAME:IP
        name, _, ip = entry.partition(":")
        lines.append(f"{ip}\t{name}\n")
    for ep in endpoints:
        if ep.net_id != GWBRIDGE:  # the egress bridge is a way out, not an identity
            lines.append(f"{ep.ip}\t{config.effective_hostname}\n")
    return "".join(lines)


def resolv_conf() -> str:
    return f"nameserver {DNS_ADDR}\noptions ndots:0\n"


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Regenerated at each start: no fsync, and the same inode (see write_files)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _host_file(path: str, default: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return default


def read_in_root(root: Path, relative: str) -> str:
    """A small text file of an image, never through a symlink: the image's content is the
    user's, and a link to a host path must not make ferryd read the host's file (empty when
    absent or a link).

    TODO: use the safe in-root resolver of ``ferry/runtime/archive.py`` once it lands.
    """
    path = root
    for part in relative.split("/"):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return ""
        if stat.S_ISLNK(mode):
            return ""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        return f.read(1 << 20).decode(errors="replace")


def tmpfs_options(mount: MountSpec) -> tuple[str, ...]:
    """Mount options of a tmpfs: Docker's defaults (noexec, nosuid, nodev) unless the user
    said ``exec``, ``suid`` or ``dev``, then the user's own, size and mode."""
    given = mount.tmpfs_options
    flags = [f for f in TMPFS_DEFAULTS if f[2:] not in given]
    flags += [f for f in given if f not in ("exec", "suid", "dev", "rw", "ro")]
    if mount.tmpfs_size_bytes:
        flags.append(f"size={mount.tmpfs_size_bytes}")
    if mount.tmpfs_mode:
        flags.append(f"mode={mount.tmpfs_mode:o}")
    return tuple(dict.fromkeys(flags))


class ContainerRunner:
    def __init__(
        self,
        *,
        store: ContainerStore,
        volumes: VolumeStore,
        runc: Runc,
        socket_dir: Path,
        cgroup_parent: str,
        host: oci.HostFacts,
    ) -> None:
        self.store = store
        self.volumes = volumes
        self.runc = runc
        self.socket_dir = socket_dir
        self.cgroup_parent = cgroup_parent.strip("/")
        self.host = host

    def paths(self, config: ContainerConfig) -> monitor.MonitorPaths:
        return monitor.MonitorPaths(
            self.store.dir(config.container_id), self.socket_dir, config.short_id
        )  # the bundle is <container dir>/bundle: <container dir>/config.json is Ferry's own

    def cgroups_path(self, config: ContainerConfig) -> str:
        return f"/{self.cgroup_parent}/{config.container_id}"

    def rootfs(self, config: ContainerConfig) -> Path:
        return self.store.dir(config.container_id) / "rootfs"

    # volumes ---------------------------------------------------------------------------------
    def claim_volumes(self, mounts: tuple[MountSpec, ...]) -> tuple[MountSpec, ...]:
        """At create: named volumes made if missing, anonymous ones given a name of their own
        (so a restart mounts the same one), bind sources checked."""
        out = []
        for mount in mounts:
            source = mount.source
            if mount.type == MountType.VOLUME:
                source = self.volumes.create(mount.source).name
            elif mount.type == MountType.BIND:
                source = check_bind_source(mount.source)
                if not os.path.exists(source):
                    raise InvalidArgument(
                        f'invalid mount config for type "bind": bind source path does not '
                        f"exist: {source}"
                    )
            out.append(replace(mount, source=source))
        return tuple(out)

    def _resolved_mounts(self, config: ContainerConfig) -> tuple[oci.ResolvedMount, ...]:
        out = []
        for mount in config.mounts:
            if mount.type == MountType.TMPFS:
                out.append(
                    oci.ResolvedMount(
                        MountType.TMPFS, mount.target, "", mount.read_only, tmpfs_options(mount)
                    )
                )
                continue
            source = mount.source
            if mount.type == MountType.VOLUME:
                try:
                    source = str(self.volumes.get(mount.source).mountpoint)
                except NotFound as exc:
                    raise NotFound(
                        f"volume {mount.source} of container {config.name} is gone: "
                        "recreate it with 'ferry volume create'"
                    ) from exc
            out.append(oci.ResolvedMount(mount.type, mount.target, source, mount.read_only))
        return tuple(out)

    # bundle ----------------------------------------------------------------------------------
    def write_files(self, config: ContainerConfig, endpoints: tuple[AttachedEndpoint, ...]) -> None:
        """The container's /etc/hosts, /etc/resolv.conf and /etc/hostname; on the host's
        network, the host's own resolver and hosts, as in Docker."""
        directory = self.store.dir(config.container_id)
        hosts, resolv = hosts_file(config, endpoints), resolv_conf()
        if config.network_mode == NETWORK_HOST:
            hosts = _host_file("/etc/hosts", _HOSTS_HEAD) + hosts[len(_HOSTS_HEAD) :]
            resolv = _host_file("/etc/resolv.conf", "")
        # in place, never renamed over: a running container holds these files bind-mounted
        _write(directory / "hosts", hosts.encode())
        _write(directory / "resolv.conf", resolv.encode())
        _write(directory / "hostname", f"{config.effective_hostname}\n".encode())

    def prepare(
        self,
        container: Container,
        image: Image,
        netns: Path | None,
        endpoints: tuple[AttachedEndpoint, ...],
        files: dict[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """Files, root filesystem and ``config.json``; returns the config written. ``files``:
        the data of the container's secrets and configs (``config.files``), by
        ``task_files.data_key``; NotFound when one is missing."""
        config = container.config
        directory = self.store.dir(config.container_id)
        bound: tuple[oci.ResolvedMount, ...] = ()
        if config.files:
            task_files.write(directory / FILES_DIR, config.files, files or {})
            bound = task_files.bind_mounts(directory / FILES_DIR, config.files)
        self.write_files(config, endpoints)
        rootfs = self.rootfs(config)
        if not mounts.is_mounted(rootfs):
            mounts.mount_overlay(
                image.layers or (image.rootfs,), directory / "upper", directory / "work", rootfs
            )
        user = resolve_user(
            config.user,
            config.group_add,
            read_in_root(rootfs, "etc/passwd"),
            read_in_root(rootfs, "etc/group"),
        )
        spec = oci.BundleSpec(
            config=config,
            rootfs=str(rootfs),
            netns=str(netns) if netns is not None else "",
            files_dir=str(directory),
            cgroups_path=self.cgroups_path(config),
            user=user,
            mounts=self._resolved_mounts(config) + bound,
        )
        document = oci.plan_config(spec, self.host, docker_default_profile())
        bundle = self.paths(config).bundle
        bundle.mkdir(exist_ok=True)
        _write(bundle / "config.json", json.dumps(document).encode(), 0o600)
        return document

    async def cleanup(self, config: ContainerConfig) -> None:
        """After the container ended (or failed to start): runc's record and cgroups, then the
        root filesystem's mount (idempotent)."""
        await self.runc.delete(config.container_id)
        mounts.unmount(self.rootfs(config))
        task_files.remove(self.store.dir(config.container_id) / FILES_DIR)
        cgroups.remove_tree(self.cgroups_path(config))


class RunnerConfig(Protocol):
    """What ``make_runner`` needs of ferryd's settings (``daemon.config.DaemonConfig``)."""

    @property
    def containers_dir(self) -> Path: ...
    @property
    def volumes_dir(self) -> Path: ...
    @property
    def runc_root(self) -> Path: ...
    @property
    def monitor_socket_dir(self) -> Path: ...
    @property
    def cgroup_parent(self) -> str: ...


def make_runner(config: RunnerConfig) -> ContainerRunner:
    mask, kernel = cgroups.host_facts()
    available = tuple(c for i, c in enumerate(CAPABILITIES) if mask >> i & 1)
    init_path = shutil.which("tini-static") or "/usr/bin/tini-static"
    return ContainerRunner(
        store=ContainerStore(config.containers_dir),
        volumes=VolumeStore(config.volumes_dir),
        runc=Runc(config.runc_root, shutil.which(RUNC) or f"/usr/sbin/{RUNC}"),
        socket_dir=config.monitor_socket_dir,
        cgroup_parent=config.cgroup_parent,
        host=oci.HostFacts(available, kernel, init_path=init_path),
    )
