"""The files that make up a container's view of the world, as text (pure, unit-tested):
/etc/hosts, /etc/resolv.conf, /etc/hostname and the init script that mounts them and then
becomes the container's command.

Why a script: it is the whole recipe of a container's filesystem view, readable on disk
(``<state>/containers/<id>/init.sh``), and it needs no process of ours to stay behind — the
command replaces it (``exec``), so PID 1 in the container is the user's command, as in Docker.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ferry.kernel.proc import in_netns_argv
from ferry.model.container import AttachedEndpoint, ContainerConfig
from ferry.model.network import GWBRIDGE

DNS_ADDR = "127.0.0.11"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_HOSTS_HEAD = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def hosts_file(config: ContainerConfig, endpoints: tuple[AttachedEndpoint, ...]) -> str:
    lines = [_HOSTS_HEAD]
    for ep in endpoints:
        if ep.net_id != GWBRIDGE:  # the egress bridge is a way out, not an identity
            lines.append(f"{ep.ip}\t{config.effective_hostname}\n")
    return "".join(lines)


def resolv_conf() -> str:
    return f"nameserver {DNS_ADDR}\noptions ndots:0\n"


def environment(config: ContainerConfig) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": config.effective_hostname}
    for pair in config.env:
        key, _, value = pair.partition("=")
        env[key] = value
    return env


def init_script(config: ContainerConfig, directory: Path, image_rootfs: Path | None) -> str:
    """The script PID 1 runs first: mounts, hostname, then ``exec`` of the command."""
    q = shlex.quote
    d = q(str(directory))
    lines = [
        "#!/bin/sh",
        f"# ferryd: filesystem view of container {config.name} ({config.short_id}).",
        "set -e",
        # A new mount namespace starts as a copy of the host's, including the mounts that keep
        # other containers' network namespaces alive; drop them so they can die with their owner.
        "umount -l /run/netns 2>/dev/null || true",
    ]
    if image_rootfs is None:
        root = ""
        lines.append("mount -t proc proc /proc")  # this PID namespace's processes only
    else:
        root = f"{d}/rootfs"
        lines += [
            f"mount -t overlay overlay -o lowerdir={q(str(image_rootfs))},upperdir={d}/upper,"
            f"workdir={d}/work {root}",
            f"mkdir -p {root}/proc {root}/dev {root}/sys {root}/etc {root}/tmp",
            f"mount -t proc proc {root}/proc",
            f"mount -t tmpfs -o mode=755,nosuid tmpfs {root}/dev",
            "for n in null zero full random urandom tty; do "
            f"touch {root}/dev/$n; mount --bind /dev/$n {root}/dev/$n; done",
            f"mkdir -p {root}/dev/pts {root}/dev/shm",
            f"mount -t devpts -o newinstance,ptmxmode=0666 devpts {root}/dev/pts",
            f"ln -sf pts/ptmx {root}/dev/ptmx",
            f"mount -t sysfs -o ro sysfs {root}/sys",
            f"touch {root}/etc/hosts {root}/etc/resolv.conf {root}/etc/hostname",
        ]
    for name in ("hosts", "resolv.conf", "hostname"):
        lines.append(f"mount --bind {d}/{name} {root}/etc/{name}")
    lines.append(f"hostname {q(config.effective_hostname)}")
    if config.working_dir:
        lines.append(f"cd {q(root + config.working_dir)}")
    run = f'chroot {root} "$@"' if image_rootfs is not None else '"$@"'
    if config.init:
        lines += INIT_LOOP.format(run=run).splitlines()
    else:
        lines.append(f"exec {run}")
    return "\n".join(lines) + "\n"


# --init: PID 1 stays this shell, which forwards SIGTERM/SIGINT to the command (a PID namespace's
# init ignores signals it has no handler for; the command, not being PID 1, does not) and ends
# with the command's status.
INIT_LOOP = """set +e
{run} &
child=$!
trap 'kill -TERM $child 2>/dev/null' TERM
trap 'kill -INT $child 2>/dev/null' INT
while :; do wait $child; status=$?; kill -0 $child 2>/dev/null || exit $status; done"""


# The shim: the only process of ours per container. It lives in the container's namespaces
# except the PID one (unshare --pid without --fork makes its first child PID 1 of the new
# namespace), waits for that child and records its exit status; a shell reports a death by
# signal N as 128+N, which is what Docker reports too (137 for SIGKILL). It runs in its own
# session, so it outlives ferryd.
SHIM = 'init=$1; exitf=$2; shift 2; /bin/sh "$init" "$@"; echo $? > "$exitf"'


def shim_argv(netns: Path, init: Path, exit_file: Path, cmd: tuple[str, ...]) -> list[str]:
    return in_netns_argv(netns, [
        "unshare", "--mount", "--uts", "--ipc", "--pid", "--propagation", "private", "--",
        "/bin/sh", "-c", SHIM, "ferry-shim", str(init), str(exit_file), *cmd,
    ])  # fmt: skip


def exec_argv(pid: int, cmd: list[str], workdir: str = "") -> list[str]:
    """Run ``cmd`` inside a running container (its namespaces, root and directory)."""
    argv = ["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid",
            "--root"]  # fmt: skip
    argv.append(f"--wd={workdir}" if workdir else "--wd")
    return [*argv, "--", *cmd]
