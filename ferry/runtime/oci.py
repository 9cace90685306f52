"""The OCI runtime configuration (``config.json``) runc runs a container from, written the way
Docker writes it (pure: plain data in, a dict out, unit-tested as data).

What a container gets, and where the rule comes from (moby ``oci/defaults.go`` and
``daemon/oci_linux.go`` unless said otherwise):
- new PID, IPC, UTS and mount namespaces; the network namespace Ferry made and attached
  (``<prefix>c-<id12>``), by path: runc joins it, never creates one;
- Docker's default capabilities (CapEff ``a80425fb``) adjusted by --cap-add/--cap-drop, all of
  them with --privileged; Docker's default seccomp profile (``seccomp.py``) unless
  --privileged or ``seccomp=unconfined``;
- /proc with Docker's masked and read-only paths, /sys read-only, a minimal /dev (runc makes
  null, zero, full, random, urandom, tty) with /dev/pts, /dev/shm and /dev/mqueue, and a
  device cgroup that allows only those;
- the container's own /etc/hosts, /etc/resolv.conf and /etc/hostname, bind-mounted;
- user and groups (resolved in the image by the caller), environment, working directory,
  hostname, rlimits (``--ulimit``; the others inherited, as in Docker), no_new_privileges
  when asked, cgroup limits (memory, CPU, pids), and Docker's two network sysctls for a private
  network namespace (unprivileged ports from 0, ping for every group).

Be aware: --privileged gives every capability, no seccomp, no masked paths and a device
cgroup that allows all, but /dev stays minimal (Docker also creates the host's devices in it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ferry.model.container import ContainerConfig
from ferry.model.runopts import MountType, Resources, capabilities
from ferry.runtime.seccomp import plan_seccomp

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_BYTES = 64 << 20
CPU_PERIOD_US = 100_000
INIT_IN_CONTAINER = "/sbin/docker-init"

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Docker's device cgroup: nothing but mknod in general, and read/write on the devices a
# container's /dev holds (null, zero, full, random, urandom, tty, console, ptmx, pts, tun).
_ALLOWED_DEVICES = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 7, "rwm"), ("c", 1, 8, "rwm"),
    ("c", 1, 9, "rwm"), ("c", 5, 0, "rwm"), ("c", 5, 1, "rwm"), ("c", 5, 2, "rwm"),
    ("c", 136, None, "rwm"), ("c", 10, 200, "rwm"),
)  # fmt: skip


@dataclass(frozen=True)
class HostFacts:
    """What the config depends on from the host (read once, in ``kernel/``)."""

    available_caps: tuple[str, ...]  # what ferryd's root holds: its bounding set
    kernel: tuple[int, ...]  # (6, 18)
    arch: str = "amd64"  # Go's names, as Docker's seccomp profile spells them
    init_path: str = "/usr/bin/tini-static"  # --init: Docker's docker-init is tini


@dataclass(frozen=True)
class ResolvedUser:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    home: str = "/root"


@dataclass(frozen=True)
class ResolvedMount:
    """A mount with its host side known: a bind's path, a volume's directory, or a tmpfs."""

    kind: MountType
    target: str
    source: str = ""
    read_only: bool = False
    options: tuple[str, ...] = ()  # tmpfs: size=…, mode=…, noexec …


@dataclass(frozen=True)
class BundleSpec:
    config: ContainerConfig
    rootfs: str
    netns: str  # path of the network namespace to join; "" shares the host's
    files_dir: str  # holds hosts, resolv.conf, hostname
    cgroups_path: str
    user: ResolvedUser = ResolvedUser()
    mounts: tuple[ResolvedMount, ...] = ()
    image_env: tuple[str, ...] = ()  # the image's Env, below the container's own


def environment(
    config: ContainerConfig, user: ResolvedUser, image_env: tuple[str, ...] = ()
) -> list[str]:
    """Docker's order: PATH, HOSTNAME, (TERM with -t), HOME, then the image's and the
    container's variables, a later one replacing an earlier one of the same name."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": config.effective_hostname}
    if config.tty:
        env["TERM"] = "xterm"
    env["HOME"] = user.home or "/"
    for pair in (*image_env, *config.env):
        key, _, value = pair.partition("=")
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def _rlimits(config: ContainerConfig) -> list[dict[str, Any]]:
    """``--ulimit`` only: as in Docker, the others are inherited from the daemon."""
    return [
        {"type": f"RLIMIT_{u.name.upper()}", "soft": u.soft, "hard": u.hard}
        for u in sorted(config.ulimits, key=lambda u: u.name)
    ]


def plan_process(
    config: ContainerConfig,
    user: ResolvedUser,
    host: HostFacts,
    *,
    args: list[str],
    env: list[str],
    cwd: str,
    terminal: bool,
    privileged: bool,
) -> dict[str, Any]:
    """An OCI process: the container's own, or one ``runc exec --process`` runs."""
    security = config.security
    if privileged and not security.privileged:
        security = replace(security, privileged=True)
    caps = list(capabilities(security, host.available_caps))
    return {
        "terminal": terminal,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
        "args": args,
        "env": env,
        "cwd": cwd or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": _rlimits(config),
        "noNewPrivileges": config.security.no_new_privileges,
        "oomScoreAdj": 0,
    }


def container_args(config: ContainerConfig) -> list[str]:
    """The command, under Docker's init (tini, mounted at /sbin/docker-init) with --init."""
    if config.init:
        return [INIT_IN_CONTAINER, "--", *config.argv]
    return list(config.argv)


def _mount(dest: str, kind: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": kind, "source": source, "options": options}


def _base_mounts(config: ContainerConfig, privileged: bool) -> list[dict[str, Any]]:
    shm = config.shm_size_bytes or DEFAULT_SHM_BYTES
    ro = [] if privileged else ["ro"]
    return [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", *ro]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime",
                                                       *ro]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777",
                                            f"size={shm}"]),
    ]  # fmt: skip


def _user_mounts(spec: BundleSpec, host: HostFacts) -> list[dict[str, Any]]:
    files = spec.files_dir.rstrip("/")
    out = [
        _mount(f"/etc/{name}", "bind", f"{files}/{name}", ["rbind", "rprivate"])
        for name in ("resolv.conf", "hostname", "hosts")
    ]
    for mount in spec.mounts:
        access = "ro" if mount.read_only else "rw"
        if mount.kind == MountType.TMPFS:
            flags = [o for o in mount.options if o not in ("ro", "rw")]
            out.append(_mount(mount.target, "tmpfs", "tmpfs", [*flags, access]))
        else:
            out.append(_mount(mount.target, "bind", mount.source, ["rbind", "rprivate", access]))
    if spec.config.init:
        out.append(_mount(INIT_IN_CONTAINER, "bind", host.init_path, ["bind", "ro"]))
    return out


def plan_resources(resources: Resources) -> dict[str, Any]:
    """The cgroup part of ``linux.resources`` (also what ``runc update`` takes)."""
    out: dict[str, Any] = {}
    memory: dict[str, int] = {}
    if resources.memory_bytes:
        memory["limit"] = resources.memory_bytes
    if resources.memory_reservation_bytes:
        memory["reservation"] = resources.memory_reservation_bytes
    if memory:
        out["memory"] = memory
    cpu: dict[str, int] = {}
    if resources.nano_cpus:  # Docker: quota over a 100 ms period
        cpu["period"] = CPU_PERIOD_US
        cpu["quota"] = resources.nano_cpus * CPU_PERIOD_US // 1_000_000_000
    if resources.cpu_period_us:
        cpu["period"] = resources.cpu_period_us
    if resources.cpu_quota_us:
        cpu["quota"] = resources.cpu_quota_us
    if resources.cpu_shares:
        cpu["shares"] = resources.cpu_shares
    if cpu:
        out["cpu"] = cpu
    if resources.pids_limit > 0:
        out["pids"] = {"limit": resources.pids_limit}
    return out


def plan_update(resources: Resources) -> dict[str, Any]:
    """What ``runc update`` takes to bring a running container's cgroup to ``resources``:
    ``plan_resources``, and the cgroup's "no limit" (-1) for a CPU quota and a PIDs limit
    that are not set, since runc leaves alone what it is not given (so a limit lifted by
    ``update`` would otherwise stay in the kernel)."""
    out = plan_resources(resources)
    cpu = out.setdefault("cpu", {})
    if not resources.nano_cpus and not resources.cpu_quota_us:
        cpu["quota"] = -1
    if resources.pids_limit <= 0:
        out["pids"] = {"limit": -1}
    return out


def _devices(privileged: bool) -> list[dict[str, Any]]:
    if privileged:
        return [{"allow": True, "access": "rwm"}]
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    for kind, major, minor, access in _ALLOWED_DEVICES:
        rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major is not None:
            rule["major"] = major
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def _linux(spec: BundleSpec, host: HostFacts, profile: dict[str, Any]) -> dict[str, Any]:
    config = spec.config
    security = config.security
    namespaces: list[dict[str, str]] = [
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
    ]  # fmt: skip
    sysctl: dict[str, str] = {}
    if spec.netns:
        namespaces.append({"type": "network", "path": spec.netns})
        sysctl = {
            "net.ipv4.ip_unprivileged_port_start": "0",
            "net.ipv4.ping_group_range": "0 2147483647",
        }
    sysctl.update(config.sysctls)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": {"devices": _devices(security.privileged), **plan_resources(config.resources)},
        "cgroupsPath": spec.cgroups_path,
        "sysctl": sysctl,
    }
    if not security.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        if not security.seccomp_unconfined:
            caps = capabilities(security, host.available_caps)
            linux["seccomp"] = plan_seccomp(profile, caps, host.arch, host.kernel)
    return linux


def plan_config(spec: BundleSpec, host: HostFacts, profile: dict[str, Any]) -> dict[str, Any]:
    """The whole ``config.json`` for ``spec`` on ``host``, with seccomp from ``profile``
    (Docker's default profile, ``seccomp.docker_default_profile()``)."""
    config = spec.config
    process = plan_process(
        config,
        spec.user,
        host,
        args=container_args(config),
        env=environment(config, spec.user, spec.image_env),
        cwd=config.working_dir,
        terminal=config.tty,
        privileged=False,
    )
    return {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": spec.rootfs, "readonly": config.security.read_only},
        "hostname": config.effective_hostname,
        "mounts": _base_mounts(config, config.security.privileged) + _user_mounts(spec, host),
        "linux": _linux(spec, host, profile),
    }
