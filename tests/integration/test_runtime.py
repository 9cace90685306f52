"""Containers on runc with Docker's confinement, in a real lab: what a process inside may and
may not do, the run options, the terminal, volumes, logs, and a restart of ferryd."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.lab import lab as labmod
from tests.integration.lablib import FERRY, TOOLS, LabRig, new_lab, wait_until

DOCKER_CAPS = "00000000a80425fb"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        yield rig


def run(lab: LabRig, *args: str, check: bool = True) -> str:
    result = lab.ferry("h1", "run", "--rm", *args, check=check)
    return result.stdout


def caps(status: str) -> dict[str, str]:
    return dict(line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))


def test_a_container_holds_dockers_capabilities_and_nothing_more(lab: LabRig) -> None:
    found = caps(run(lab, TOOLS, "grep", "Cap", "/proc/self/status"))
    assert found["CapEff"] == found["CapPrm"] == found["CapBnd"] == DOCKER_CAPS
    assert found["CapInh"] == found["CapAmb"] == "0000000000000000"
    seccomp = run(lab, TOOLS, "grep", "^Seccomp:", "/proc/self/status")
    assert seccomp.split() == ["Seccomp:", "2"]  # a filter is in force


def test_ping_works_and_the_kernel_stays_out_of_reach(lab: LabRig) -> None:
    assert " 0% packet loss" in run(lab, TOOLS, "ping", "-c", "1", "-W", "2", "127.0.0.1")
    script = (
        "echo h > /proc/sys/kernel/hostname && echo proc-sys-written; "
        "mount -t tmpfs none /mnt && echo mounted; "
        "unshare -n true && echo unshared; "
        "ip link add v0 type veth peer name v1 2>/dev/null && echo link-added; echo done"
    )
    out = run(lab, TOOLS, "sh", "-c", script)
    assert out.strip() == "done"


def test_the_hosts_files_are_invisible_also_through_exec_workdir(lab: LabRig) -> None:
    marker = Path(f"/tmp/ferry-host-marker-{os.getpid()}")
    marker.write_text("host secret\n")
    try:
        assert marker.name not in run(lab, TOOLS, "ls", "-a", "/tmp")
        lab.ferry("h1", "run", "-d", "--name", "seer", TOOLS, "sleep", "600")
        listing = lab.ferry("h1", "exec", "-w", "/tmp", "seer", "ls", "-a", ".").stdout
        assert marker.name not in listing
        assert lab.ferry("h1", "exec", "-w", "/tmp", "seer", "pwd").stdout.strip() == "/tmp"
        denied = lab.ferry("h1", "exec", "seer", "cat", str(marker), check=False)
        assert denied.returncode != 0
    finally:
        marker.unlink()
        lab.ferry("h1", "rm", "-f", "seer", check=False)


def test_user_read_only_and_privileged(lab: LabRig) -> None:
    assert run(lab, "--user", "1000", TOOLS, "id", "-u").strip() == "1000"
    assert run(lab, "-u", "1000:1000", TOOLS, "id", "-g").strip() == "1000"
    refused = lab.ferry("h1", "run", "--rm", "--read-only", TOOLS, "touch", "/x", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    tmp = run(
        lab, "--read-only", "--tmpfs", "/scratch", TOOLS, "sh", "-c", "touch /scratch/x && echo ok"
    )
    assert tmp.strip() == "ok"
    privileged = caps(run(lab, "--privileged", TOOLS, "grep", "Cap", "/proc/self/status"))
    assert privileged["CapEff"] != DOCKER_CAPS
    dropped = caps(run(lab, "--cap-drop", "ALL", "--cap-add", "KILL", TOOLS, "grep", "Cap",
                       "/proc/self/status"))  # fmt: skip
    assert dropped["CapEff"] == "0000000000000020"


def test_memory_limit_is_the_cgroups_and_beyond_it_the_command_is_oom_killed(
    lab: LabRig,
) -> None:
    limit = run(lab, "-m", "64m", TOOLS, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert int(limit) == 64 << 20
    hog = lab.ferry("h1", "run", "--name", "hog", "-m", "64m", TOOLS, "python3", "-c",
                    "b = bytearray(256 << 20)", check=False)  # fmt: skip
    assert hog.returncode == 137
    state = lab.api("h1", "/containers/hog/json")["State"]
    assert state["ExitCode"] == 137 and state["OOMKilled"] is True
    lab.ferry("h1", "rm", "hog")


def test_pids_and_cpu_limits_reach_the_cgroup(lab: LabRig) -> None:
    out = run(lab, "--pids-limit", "20", "--cpus", "0.5", TOOLS, "sh", "-c",
              "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us")  # fmt: skip
    assert out.split() == ["20", "50000"]


def drive(
    argv: list[str], typed: bytes, timeout_s: float = 30.0, prompt: bytes | None = b"#"
) -> tuple[bytes, int]:
    """Run ``argv`` on a terminal of ours, type ``typed`` once it prompts (or, with no prompt
    to wait for, after a second), read to the end."""
    began = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        waited = prompt in out if prompt is not None else time.monotonic() - began > 1.0
        if not sent and waited:
            os.write(fd, typed)
            sent = True
    ended, status = os.waitpid(pid, os.WNOHANG)
    while ended == 0 and time.monotonic() < deadline + 5:  # the terminal closes just before
        time.sleep(0.05)
        ended, status = os.waitpid(pid, os.WNOHANG)
    if ended == 0:  # still running past the deadline: end it, and say what it showed
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        raise AssertionError(f"{argv} did not end within {timeout_s}s; it showed {out!r}")
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("client", ["ferry", "docker"])
def test_run_it_is_an_interactive_shell_on_a_real_terminal(lab: LabRig, client: str) -> None:
    binary = FERRY if client == "ferry" else client
    argv = [FERRY, "lab", "exec", "--name", lab.name, "h1", "--", binary, "run", "-it", "--rm",
            TOOLS, "sh"]  # fmt: skip
    out, code = drive(argv, b"tty; echo answer-$((6*7)); exit 5\r")
    assert b"answer-42" in out
    assert b"/dev/pts/0" in out
    assert code == 5


def test_exec_it_and_the_status_of_a_signalled_exec(lab: LabRig) -> None:
    lab.ferry("h1", "run", "-d", "--name", "shell", TOOLS, "sleep", "600")
    try:
        argv = [FERRY, "lab", "exec", "--name", lab.name, "h1", "--", FERRY, "exec", "-it",
                "shell", "sh"]  # fmt: skip
        out, code = drive(argv, b"echo in-$((2+3)); exit 3\r")
        assert b"in-5" in out and code == 3
        for sig, status in (("TERM", 143), ("KILL", 137), ("SEGV", 139)):
            killed = lab.ferry("h1", "exec", "shell", "sh", "-c", f"kill -{sig} $$", check=False)
            assert killed.returncode == status, sig
        who = lab.ferry(
            "h1", "exec", "-u", "1000", "-e", "X=y", "shell", "sh", "-c", "id -u; echo $X"
        )
        assert who.stdout.split() == ["1000", "y"]
        held = caps(lab.ferry("h1", "exec", "--privileged", "shell", "grep", "Cap",
                              "/proc/self/status").stdout)  # fmt: skip
        assert held["CapEff"] != DOCKER_CAPS
    finally:
        lab.ferry("h1", "rm", "-f", "shell", check=False)


def test_logs_keep_stdout_and_stderr_apart_with_their_times(lab: LabRig) -> None:
    lab.ferry("h1", "run", "--name", "talker", TOOLS, "sh", "-c",
              "echo out1; echo err1 >&2; sleep 1.2; echo out2")  # fmt: skip
    try:
        logs = lab.ferry("h1", "logs", "talker")
        assert logs.stdout == "out1\nout2\n" and logs.stderr == "err1\n"
        stamped = lab.ferry("h1", "logs", "--timestamps", "talker").stdout.splitlines()
        first = stamped[0].split(" ", 1)
        assert first[1] == "out1" and first[0].endswith("Z") and len(first[0]) == 30
        late = lab.ferry("h1", "logs", "--since", first[0], "--tail", "1", "talker").stdout
        assert late == "out2\n"
        docker = lab.exec("h1", "docker", "logs", "talker")
        assert docker.stdout == "out1\nout2\n" and docker.stderr == "err1\n"
    finally:
        lab.ferry("h1", "rm", "talker", check=False)


def test_a_volume_outlives_its_container_and_is_shared(lab: LabRig) -> None:
    run(lab, "-v", "shared:/data", TOOLS, "sh", "-c", "echo kept > /data/f")
    assert (
        run(lab, "--mount", "type=volume,source=shared,target=/d", TOOLS, "cat", "/d/f") == "kept\n"
    )
    lab.ferry("h1", "run", "-d", "--name", "v1", "-v", "shared:/data", TOOLS, "sleep", "600")
    lab.ferry("h1", "run", "-d", "--name", "v2", "-v", "shared:/data:ro", TOOLS, "sleep", "600")
    try:
        lab.ferry("h1", "exec", "v1", "sh", "-c", "echo from-v1 > /data/g")
        assert lab.ferry("h1", "exec", "v2", "cat", "/data/g").stdout == "from-v1\n"
        assert lab.ferry("h1", "exec", "v2", "touch", "/data/h", check=False).returncode != 0
        busy = lab.ferry("h1", "volume", "rm", "shared", check=False)
        assert busy.returncode != 0 and "in use" in busy.stderr
    finally:
        lab.ferry("h1", "rm", "-f", "v1", "v2", check=False)
    listed = json.loads(lab.ferry("h1", "volume", "inspect", "shared").stdout)
    assert listed[0]["Name"] == "shared" and listed[0]["Driver"] == "local"
    lab.ferry("h1", "volume", "rm", "shared")
    assert "shared" not in lab.ferry("h1", "volume", "ls", "-q").stdout.split()


def test_restart_policy_init_and_stop_signal(lab: LabRig) -> None:
    lab.ferry("h1", "run", "-d", "--name", "flaky", "--restart", "on-failure:2", TOOLS, "sh",
              "-c", "exit 3")  # fmt: skip
    try:

        def settled() -> dict[str, object] | None:
            info = lab.api("h1", "/containers/flaky/json")
            done = info["RestartCount"] == 2 and not info["State"]["Running"]
            return info if done and not info["State"]["Restarting"] else None

        info = wait_until(settled, 30, "two restarts, then rest")
        assert info["State"]["ExitCode"] == 3
    finally:
        lab.ferry("h1", "rm", "-f", "flaky", check=False)
    lab.ferry("h1", "run", "-d", "--name", "tini", "--init", TOOLS, "sleep", "600")
    try:
        top = lab.ferry("h1", "exec", "tini", "cat", "/proc/1/cmdline").stdout
        assert top.split("\0")[0] == "/sbin/docker-init"
        lab.ferry("h1", "stop", "-t", "30", "tini")  # tini passes SIGTERM on: sleep ends
        assert lab.api("h1", "/containers/tini/json")["State"]["ExitCode"] == 143
    finally:
        lab.ferry("h1", "rm", "-f", "tini", check=False)
    lab.ferry("h1", "run", "-d", "--name", "usr1", "--stop-signal", "USR1", TOOLS, "sh", "-c",
              "trap 'exit 7' USR1; while :; do sleep 0.1; done")  # fmt: skip
    try:
        lab.ferry("h1", "stop", "usr1")
        assert lab.api("h1", "/containers/usr1/json")["State"]["ExitCode"] == 7
    finally:
        lab.ferry("h1", "rm", "-f", "usr1", check=False)


def test_a_restart_of_ferryd_keeps_containers_exec_and_logs(lab: LabRig) -> None:
    lab.ferry("h1", "run", "-d", "--name", "survivor", TOOLS, "sh", "-c",
              "echo before; while :; do sleep 0.2; done")  # fmt: skip
    try:
        pid = lab.api("h1", "/containers/survivor/json")["State"]["Pid"]
        labmod.stop_ferryd(lab.topo, "h1", kill=True)
        assert Path(f"/proc/{pid}").exists()  # ferryd gone, the container still runs
        labmod.start_ferryd(lab.topo, "h1")
        info = lab.api("h1", "/containers/survivor/json")
        assert info["State"]["Running"] and info["State"]["Pid"] == pid
        assert lab.ferry("h1", "exec", "survivor", "echo", "after").stdout == "after\n"
        assert lab.ferry("h1", "logs", "survivor").stdout == "before\n"
        lab.ferry("h1", "stop", "-t", "1", "survivor")
        assert not Path(f"/proc/{pid}").exists()
    finally:
        lab.ferry("h1", "rm", "-f", "survivor", check=False)


def test_attach_gives_the_containers_terminal(lab: LabRig) -> None:
    for client, status in ((FERRY, 5), ("docker", 6)):
        name = f"term{status}"
        lab.ferry("h1", "run", "-d", "-it", "--name", name, TOOLS, "sh")
        try:
            argv = [FERRY, "lab", "exec", "--name", lab.name, "h1", "--", client, "attach", name]
            out, code = drive(argv, f"tty; exit {status}\r".encode(), prompt=None)
            assert b"/dev/pts/0" in out and code == status, (client, out)
        finally:
            lab.ferry("h1", "rm", "-f", name, check=False)
