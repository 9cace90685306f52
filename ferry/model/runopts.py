"""A container's run options beyond its command and networks — resources, confinement, mounts,
restart policy, limits — as plain data, and the parsers of Docker's spellings of them (pure).

Each parser follows the docker CLI's reading of the same text (``docker run --help`` and the
Engine API's ``HostConfig``); whatever it does not understand is refused in one line naming it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from ferry.errors import InvalidArgument

# Linux capabilities by number (capability.h); a kernel knows those up to cap_last_cap.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

# Docker's default set (moby oci/caps/defaults.go): CapEff 00000000a80425fb inside a container.
DOCKER_DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str, what: str = "size") -> int:
    """Docker's RAMInBytes: ``64m`` is 64 MiB, ``1g`` 1 GiB, a bare number bytes."""
    match = _SIZE_RE.match(text.strip())
    if match is None:
        raise InvalidArgument(
            f"invalid {what} {text!r}: use a number with an optional unit b, k, m or g"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_cpus(text: str) -> int:
    """``--cpus 1.5`` as Docker's NanoCpus (1.5e9)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid --cpus {text!r}: use a number such as 0.5 or 2") from exc
    if value < 0:
        raise InvalidArgument(f"invalid --cpus {text!r}: it cannot be negative (0: no limit)")
    return round(value * 1e9)


def normalise_cap(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` and ``CAP_NET_ADMIN`` name the same capability; ``ALL``
    stands for every one (as the docker CLI reads ``--cap-add``)."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return full


MIN_MEMORY_BYTES = 6 << 20  # Docker's linuxMinMemory
MIN_NANO_CPUS = 10**7  # 0.01 CPU: the 1 ms quota of a 100 ms period


@dataclass(frozen=True)
class Resources:
    """cgroup limits (Docker's HostConfig names in the comments)."""

    memory_bytes: int = 0  # Memory
    memory_reservation_bytes: int = 0  # MemoryReservation
    nano_cpus: int = 0  # NanoCpus (--cpus)
    cpu_shares: int = 0  # CpuShares
    cpu_period_us: int = 0  # CpuPeriod
    cpu_quota_us: int = 0  # CpuQuota
    pids_limit: int = 0  # PidsLimit; 0 or -1: unlimited

    def check(self, cpus_available: int | None = None) -> None:
        """Docker's checks of these values at create and update (moby's
        verifyPlatformContainerResources), with its messages; ``cpus_available``: the CPUs
        the host may run the container on (None: not known here, e.g. a service's limits
        checked on a manager). Raises InvalidArgument."""
        if self.memory_bytes and self.memory_bytes < MIN_MEMORY_BYTES:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        if self.memory_reservation_bytes and self.memory_reservation_bytes < MIN_MEMORY_BYTES:
            raise InvalidArgument("Minimum memory reservation allowed is 6MB")
        if self.memory_bytes and self.memory_reservation_bytes > self.memory_bytes:
            raise InvalidArgument(
                "Minimum memory limit can not be less than memory reservation limit, see usage"
            )
        self._check_cpus(cpus_available)
        if self.cpu_shares < 0:
            raise InvalidArgument(f"invalid CPU shares {self.cpu_shares}: it cannot be negative")

    def plain(self) -> Resources:
        """These limits with Docker's "no limit" values made plain (0), as an update asks
        for them: ``PidsLimit`` 0 or -1 (Docker's API: unlimited), and ``CpuQuota`` -1 (the
        cgroup's own "no quota", which Docker's update accepts) lifts the CPU limit however
        it was set, ``--cpus`` included. Docker's update reads 0 as "not given" in every
        other field (moby daemon/update.go, docker/for-linux#558): 0 resets nothing else."""
        out = replace(self, pids_limit=max(self.pids_limit, 0))
        if self.cpu_quota_us < 0:
            out = replace(out, nano_cpus=0, cpu_quota_us=0, cpu_period_us=0)
        return out

    def _check_cpus(self, cpus_available: int | None) -> None:
        if self.nano_cpus and self.cpu_period_us:
            raise InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set"
            )
        if self.nano_cpus and self.cpu_quota_us:
            raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
        # below 0.01 CPU the quota would be under the kernel's 1 ms minimum
        most = (cpus_available or 0) * 10**9
        if self.nano_cpus and (self.nano_cpus < MIN_NANO_CPUS or (most and self.nano_cpus > most)):
            raise InvalidArgument(
                f"Range of CPUs is from 0.01 to {cpus_available}.00, as there are only "
                f"{cpus_available} CPUs available"
                if cpus_available
                else "Range of CPUs is from 0.01 up"
            )
        if self.cpu_period_us and not 1000 <= self.cpu_period_us <= 1_000_000:
            raise InvalidArgument(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                "(i.e. 1000000)"
            )
        if self.cpu_quota_us and (self.cpu_quota_us < 1000 and self.cpu_quota_us != -1):
            raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")


class MountType(StrEnum):
    BIND = "bind"
    VOLUME = "volume"
    TMPFS = "tmpfs"


@dataclass(frozen=True)
class MountSpec:
    """One ``-v``, ``--mount`` or ``--tmpfs``. ``source``: a host path (bind), a volume name
    (volume; empty until an anonymous volume gets its name) or nothing (tmpfs)."""

    type: MountType
    target: str
    source: str = ""
    read_only: bool = False
    tmpfs_size_bytes: int = 0
    tmpfs_mode: int = 0
    tmpfs_options: tuple[str, ...] = ()  # noexec, nosuid, nodev … as given

    def check(self) -> None:
        if not self.target.startswith("/"):
            raise InvalidArgument(
                f"invalid mount config: mount path must be absolute: {self.target!r}"
            )
        if self.target == "/":
            raise InvalidArgument("invalid mount config: destination can't be '/'")
        check_destination(self.target)
        if self.type == MountType.BIND and not self.source.startswith("/"):
            raise InvalidArgument(
                f'invalid mount config for type "bind": invalid mount path: {self.source!r} '
                "mount path must be absolute"
            )


# What runc lets a mount other than proc cover below /proc (its checkProcMount); /proc itself
# and anything else there it refuses at start.
PROC_MOUNTABLE = frozenset(
    {"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
     "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
     "/proc/sys/kernel/ns_last_pid"}
)  # fmt: skip
# The filesystems the runtime itself mounts there: covering them whole breaks the container
RESERVED_DESTINATIONS = ("/proc", "/sys", "/dev", "/dev/pts")


def check_destination(target: str) -> None:
    """A mount's destination runc can mount (raises InvalidArgument naming it)."""
    path = posixpath.normpath(target)
    if path in RESERVED_DESTINATIONS:
        raise InvalidArgument(
            f"invalid mount config: destination {path!r} is the container's own {path} "
            "filesystem: mount below it instead"
        )
    if path.startswith("/proc/") and path not in PROC_MOUNTABLE:
        raise InvalidArgument(
            f"invalid mount config: destination {path!r} is inside /proc, where only "
            f"{', '.join(sorted(PROC_MOUNTABLE))} can be covered"
        )


_TMPFS_FLAGS = frozenset({"rw", "ro", "noexec", "exec", "nosuid", "suid", "nodev", "dev"})
_BIND_MODES = frozenset({"rw", "ro"})


def parse_volume(text: str) -> MountSpec:
    """``-v SOURCE:TARGET[:ro|rw]`` (a host path is a bind, a name a named volume) or ``-v
    TARGET`` (an anonymous volume), as ``docker run -v`` reads it."""
    parts = text.split(":")
    if len(parts) == 1:
        return _checked(MountSpec(MountType.VOLUME, parts[0]))
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: {text!r}")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    for option in mode.split(","):
        if option not in _BIND_MODES:
            raise InvalidArgument(
                f"invalid volume specification: {text!r}: Ferry supports the modes ro and rw, "
                f"not {option!r}"
            )
    kind = MountType.BIND if source.startswith("/") else MountType.VOLUME
    return _checked(MountSpec(kind, target, source, read_only="ro" in mode.split(",")))


_MOUNT_KEYS = {
    "type": "type", "source": "source", "src": "source", "target": "target",
    "destination": "target", "dst": "target", "readonly": "readonly", "ro": "readonly",
    "tmpfs-size": "tmpfs-size", "tmpfs-mode": "tmpfs-mode",
}  # fmt: skip


def parse_mount(text: str) -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…]``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            raise InvalidArgument(
                f"invalid field {key!r} in --mount {text!r}: Ferry does not support it"
            )
        fields[_MOUNT_KEYS[key]] = value if sep else "true"
    try:
        kind = MountType(fields.get("type", "volume"))
    except ValueError as exc:
        raise InvalidArgument(
            f"invalid mount type {fields['type']!r}: use bind, volume or tmpfs"
        ) from exc
    if "target" not in fields:
        raise InvalidArgument(f"invalid --mount {text!r}: target is required")
    read_only = fields.get("readonly", "false").lower() in ("true", "1", "yes")
    if kind != MountType.TMPFS and ("tmpfs-size" in fields or "tmpfs-mode" in fields):
        raise InvalidArgument(f"invalid --mount {text!r}: tmpfs options need type=tmpfs")
    if kind == MountType.TMPFS and fields.get("source"):
        raise InvalidArgument(f"invalid --mount {text!r}: a tmpfs mount has no source")
    return _checked(
        MountSpec(
            kind,
            fields["target"],
            fields.get("source", ""),
            read_only,
            parse_bytes(fields["tmpfs-size"], "tmpfs-size") if "tmpfs-size" in fields else 0,
            int(fields["tmpfs-mode"], 8) if "tmpfs-mode" in fields else 0,
        )
    )


def parse_tmpfs(target: str, options: str = "") -> MountSpec:
    """``--tmpfs /run[:size=64m,mode=1777,noexec]`` (HostConfig.Tmpfs: target → options)."""
    size = mode = 0
    flags: list[str] = []
    for option in filter(None, options.split(",")):
        key, sep, value = option.partition("=")
        if key == "size" and sep:
            size = parse_bytes(value, "tmpfs size")
        elif key == "mode" and sep:
            mode = int(value, 8)
        elif option in _TMPFS_FLAGS:
            flags.append(option)
        else:
            raise InvalidArgument(
                f"invalid tmpfs option {option!r} for {target}: use size=, mode= or one of "
                f"{', '.join(sorted(_TMPFS_FLAGS))}"
            )
    return _checked(MountSpec(MountType.TMPFS, target, "", "ro" in flags, size, mode, tuple(flags)))


def _checked(mount: MountSpec) -> MountSpec:
    mount.check()
    return mount


def check_mounts(mounts: tuple[MountSpec, ...]) -> None:
    seen: set[str] = set()
    for mount in mounts:
        mount.check()
        target = mount.target.rstrip("/") or "/"
        if target in seen:
            raise InvalidArgument(f"Duplicate mount point: {target}")  # Docker's message
        seen.add(target)


@dataclass(frozen=True)
class Security:
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    read_only: bool = False  # --read-only: the root filesystem
    no_new_privileges: bool = False  # --security-opt no-new-privileges
    seccomp_unconfined: bool = False  # --security-opt seccomp=unconfined


def parse_security_opts(opts: list[str] | tuple[str, ...]) -> tuple[bool, bool]:
    """(no_new_privileges, seccomp_unconfined) from ``--security-opt``. Docker's other options
    (apparmor, label, a seccomp profile file) are refused: Ferry does not apply them."""
    nnp = unconfined = False
    for opt in opts:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        if key == "no-new-privileges" and value in ("", "true"):
            nnp = True
        elif key == "no-new-privileges" and value == "false":
            nnp = False
        elif key == "seccomp" and sep and value == "unconfined":
            unconfined = True
        else:
            raise InvalidArgument(
                f"unsupported --security-opt {opt!r}: Ferry supports no-new-privileges and "
                "seccomp=unconfined"
            )
    return nnp, unconfined


def capabilities(security: Security, available: tuple[str, ...]) -> tuple[str, ...]:
    """The container's capability set, as Docker computes it (moby TweakCapabilities): all for
    --privileged; ``--cap-add ALL`` all but the dropped; ``--cap-drop ALL`` only the added;
    otherwise the defaults less the dropped plus the added. In capability-number order.
    ``available``: what this host's root holds (its bounding set), which "all" means."""
    known = tuple(c for c in CAPABILITIES if c in available)
    adds = {normalise_cap(c) for c in security.cap_add}
    drops = {normalise_cap(c) for c in security.cap_drop}
    if security.privileged:
        chosen = set(known)
    elif "ALL" in adds:
        chosen = set(known) - drops
    elif "ALL" in drops:
        chosen = adds - {"ALL"}
    else:
        chosen = (set(DOCKER_DEFAULT_CAPS) - drops) | adds
    for cap in chosen:
        if cap not in known:
            raise InvalidArgument(f"capability {cap} is not available on this host")
    return tuple(c for c in known if c in chosen)


class RestartName(StrEnum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"


@dataclass(frozen=True)
class RestartPolicy:
    name: RestartName = RestartName.NO
    max_retries: int = 0  # on-failure only; 0: no limit

    def wants_restart(self, exit_code: int, restarts: int, stopped_by_user: bool) -> bool:
        """Docker's restart manager: never after an explicit stop; on-failure only for a
        non-zero status, at most ``max_retries`` times when it is set."""
        if stopped_by_user or self.name == RestartName.NO:
            return False
        if self.name == RestartName.ON_FAILURE:
            return exit_code != 0 and (not self.max_retries or restarts < self.max_retries)
        return True


def parse_restart(text: str) -> RestartPolicy:
    """``--restart no|on-failure[:N]|always|unless-stopped``."""
    name, _, count = text.partition(":")
    try:
        policy = RestartName(name or "no")
    except ValueError as exc:
        raise InvalidArgument(
            f"invalid restart policy {text!r}: use no, on-failure[:max-retries], always or "
            "unless-stopped"
        ) from exc
    if count and policy != RestartName.ON_FAILURE:
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if count and not count.isdigit():
        raise InvalidArgument(f"invalid restart policy {text!r}: the count must be a number")
    return RestartPolicy(policy, int(count or 0))


@dataclass(frozen=True)
class Ulimit:
    name: str  # nofile, nproc, core … (RLIMIT_ + upper case)
    soft: int
    hard: int


_ULIMITS = frozenset(
    {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
     "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as"}
)  # fmt: skip


def parse_ulimit(text: str) -> Ulimit:
    """``--ulimit nofile=1024[:2048]``."""
    name, sep, values = text.partition("=")
    if not sep or name not in _ULIMITS:
        raise InvalidArgument(f"invalid ulimit {text!r}: use NAME=SOFT[:HARD] with a known name")
    soft, _, hard = values.partition(":")
    try:
        limit = Ulimit(name, int(soft), int(hard or soft))
    except ValueError as exc:
        raise InvalidArgument(f"invalid ulimit {text!r}: limits are numbers") from exc
    check_ulimit(limit)
    return limit


def check_ulimit(limit: Ulimit) -> None:
    """A known name and soft <= hard (go-units' message), -1 meaning unlimited; from a flag
    or from an API body's HostConfig.Ulimits alike."""
    if limit.name not in _ULIMITS:
        raise InvalidArgument(f"invalid ulimit {limit.name!r}: not a known resource name")
    if limit.soft < -1 or limit.hard < -1:
        raise InvalidArgument(f"invalid ulimit {limit.name}: limits cannot be negative (-1: none)")
    if limit.hard != -1 and (limit.soft == -1 or limit.soft > limit.hard):
        raise InvalidArgument(
            f"ulimit soft limit must be less than or equal to hard limit: {limit.soft} > "
            f"{limit.hard}"
        )


_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


def check_user(user: str) -> str:
    """``--user NAME|UID[:GROUP|GID]``; names are resolved in the image at start."""
    if user and not _USER_RE.match(user):
        raise InvalidArgument(f"invalid --user {user!r}: use NAME|UID[:GROUP|GID]")
    return user


_IPC_SYSCTLS = frozenset(
    {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
     "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
)  # fmt: skip


def check_sysctls(sysctls: dict[str, str], host_network: bool = False) -> None:
    """``--sysctl``: only the namespaced ones Docker allows (IPC, fs.mqueue.*, and net.* when
    the container has its own network namespace)."""
    for key in sysctls:
        if key.startswith("net."):
            if host_network:
                raise InvalidArgument(f"sysctl {key!r} is not allowed in host network namespace")
            continue
        if key not in _IPC_SYSCTLS and not key.startswith("fs.mqueue."):
            raise InvalidArgument(f"sysctl {key!r} is not allowed: it is not namespaced")


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|h|m|s)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|ms|h|m|s))+$")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, what: str) -> float:
    """Go's duration spelling, as the docker CLI reads ``--health-interval 5s`` or ``1m30s``;
    seconds."""
    text = text.strip()
    if text == "0":
        return 0.0
    if not _DURATION.match(text):
        raise InvalidArgument(f"invalid {what} {text!r}: use a duration such as 5s, 1m30s or 500ms")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


@dataclass(frozen=True)
class Healthcheck:
    """Docker's HEALTHCHECK: ``test`` is ``("CMD", argv…)``, ``("CMD-SHELL", "command")`` or
    ``("NONE",)``; Docker's defaults: every 30 s, 30 s to answer, unhealthy after 3 failures in
    a row, failures in the start period not counted."""

    test: tuple[str, ...]
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.test) and self.test[0] != "NONE"

    def argv(self) -> list[str]:
        if self.test[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(self.test[1:])]
        return list(self.test[1:])

    def check(self) -> None:
        if not self.test or self.test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise InvalidArgument("a health check's test starts with CMD, CMD-SHELL or NONE")
        if self.enabled and len(self.test) < 2:
            raise InvalidArgument("a health check needs a command")
        for name, value in (("interval", self.interval_s), ("timeout", self.timeout_s)):
            if value < 0.001:
                raise InvalidArgument(f"--health-{name} must be at least 1ms")  # Docker's minimum
        if self.retries < 0 or self.start_period_s < 0:
            raise InvalidArgument("--health-retries and --health-start-period cannot be negative")
