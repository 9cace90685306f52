"""The container verbs users reach for, on runc in a real lab: top, stats, pause/unpause,
update, rename, cp both ways, diff, export, port, wait, container prune."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lablib import FERRY, TOOLS, LabRig, new_lab, wait_until


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        rig.ferry("h1", "run", "-d", "--name", "box", "-p", "8089:80", TOOLS, "sh", "-c",
                  "while :; do date +%s%N >> /tmp/ticks; sleep 0.1; done")  # fmt: skip
        yield rig


def ferry_bytes(lab: LabRig, *args: str) -> bytes:
    env = dict(os.environ, FERRY_HOST=lab.socket("h1"))
    return subprocess.run([FERRY, *args], env=env, capture_output=True, check=True).stdout


def test_top_lists_the_containers_processes_only(lab: LabRig) -> None:
    lines = lab.ferry("h1", "top", "box").stdout.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    commands = " ".join(lines[1:])
    assert "while :" in commands and "ferryd" not in commands


def test_stats_come_from_the_cgroups(lab: LabRig) -> None:
    lab.ferry("h1", "update", "--memory", "96m", "--pids-limit", "40", "box")
    out = lab.ferry("h1", "stats", "--no-stream", "box").stdout.splitlines()
    assert out[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert "/ 96.00MiB" in out[1]
    limit = lab.ferry("h1", "exec", "box", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert int(limit.stdout) == 96 << 20
    assert lab.api("h1", "/containers/box/json")["HostConfig"]["PidsLimit"] == 40
    # limits lifted as Docker's API words it: --cpus 0 (CpuQuota -1), --pids-limit 0 or -1
    lab.ferry("h1", "update", "--cpus", "0.5", "box")
    assert cgroup(lab, "cpu/cpu.cfs_quota_us", "pids/pids.max") == ["50000", "40"]
    lab.ferry("h1", "update", "--cpus", "0", "--pids-limit", "0", "box")
    assert cgroup(lab, "cpu/cpu.cfs_quota_us", "pids/pids.max") == ["-1", "max"]
    lab.exec("h1", "docker", "update", "--cpus", "1", "--pids-limit", "40", "box")
    assert cgroup(lab, "cpu/cpu.cfs_quota_us", "pids/pids.max") == ["100000", "40"]
    lab.exec("h1", "docker", "update", "--cpu-quota", "-1", "--pids-limit", "-1", "box")
    assert cgroup(lab, "cpu/cpu.cfs_quota_us", "pids/pids.max") == ["-1", "max"]


def cgroup(lab: LabRig, *files: str) -> list[str]:
    paths = [f"/sys/fs/cgroup/{name}" for name in files]
    return lab.ferry("h1", "exec", "box", "cat", *paths).stdout.split()


def test_pause_freezes_the_container_and_unpause_thaws_it(lab: LabRig) -> None:
    lab.ferry("h1", "pause", "box")
    try:
        assert lab.api("h1", "/containers/box/json")["State"]["Status"] == "paused"
        refused = lab.ferry("h1", "exec", "box", "true", check=False)
        assert refused.returncode != 0 and "paused" in refused.stderr
        frozen = lab.api("h1", "/containers/box/top")["Processes"]
        assert all(row[0] == "root" for row in frozen)  # still there, frozen
    finally:
        lab.ferry("h1", "unpause", "box")
    assert lab.api("h1", "/containers/box/json")["State"]["Status"] == "running"

    def ticks() -> str:
        return lab.ferry("h1", "exec", "box", "wc", "-l", "/tmp/ticks").stdout.split()[0]

    before = ticks()
    wait_until(lambda: ticks() != before, 10, "ticks after unpause")


def test_cp_both_ways_with_ferry_and_docker(lab: LabRig, tmp_path: Path) -> None:
    local = tmp_path / "note.txt"
    local.write_text("from the host\n")
    lab.ferry("h1", "cp", str(local), "box:/root/")
    lab.ferry("h1", "cp", str(local), "box:/root/renamed.txt")
    assert lab.ferry("h1", "exec", "box", "cat", "/root/note.txt", "/root/renamed.txt").stdout == (
        "from the host\nfrom the host\n"
    )
    lab.ferry("h1", "exec", "box", "sh", "-c", "mkdir -p /srv/d && echo inside > /srv/d/f")
    out = tmp_path / "out"
    out.mkdir()
    lab.ferry("h1", "cp", "box:/srv/d", str(out))
    assert (out / "d" / "f").read_text() == "inside\n"
    lab.exec("h1", "docker", "cp", "box:/srv/d/f", str(tmp_path / "via-docker"))
    assert (tmp_path / "via-docker").read_text() == "inside\n"
    streamed = ferry_bytes(lab, "cp", "box:/srv/d/f", "-")
    with tarfile.open(fileobj=io.BytesIO(streamed)) as archive:
        assert archive.getnames() == ["f"]
    missing = lab.ferry("h1", "cp", "box:/no/such", str(out), check=False)
    assert missing.returncode != 0


def test_diff_and_export(lab: LabRig) -> None:
    lab.ferry("h1", "exec", "box", "sh", "-c", "echo x > /etc/added; rm /usr/bin/yes")
    changes = set(lab.ferry("h1", "diff", "box").stdout.splitlines())
    assert {"A /etc/added", "D /usr/bin/yes", "C /etc"} <= changes
    assert not any(line.endswith("/etc/hosts") for line in changes)
    exported = ferry_bytes(lab, "export", "box")
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        names = set(archive.getnames())
    assert "./etc/added" in names and "./usr/bin/yes" not in names and "./usr/bin/sh" in names


def test_port_rename_and_wait(lab: LabRig) -> None:
    assert lab.ferry("h1", "port", "box").stdout.strip() == "80/tcp -> 0.0.0.0:8089"
    assert lab.ferry("h1", "port", "box", "80").stdout.strip() == "0.0.0.0:8089"
    lab.ferry("h1", "run", "-d", "--name", "short", TOOLS, "sh", "-c", "sleep 1; exit 4")
    lab.ferry("h1", "rename", "short", "brief")
    assert lab.ferry("h1", "wait", "brief").stdout.strip() == "4"
    taken = lab.ferry("h1", "rename", "brief", "box", check=False)
    assert taken.returncode != 0 and "already in use" in taken.stderr
    # a command that cannot start: Docker's error and status, every waiter ended (bounded:
    # the docker CLI used to wait forever for the removal of a --rm container that never ran)
    bounded = ("timeout", "-s", "KILL", "60", "docker", "run")
    before = {c["Names"][0] for c in lab.api("h1", "/containers/json", all=1)}
    missing = lab.exec("h1", *bounded, "--rm", TOOLS, "/nonexistent", check=False)
    assert missing.returncode == 127, missing.stderr
    assert (
        "Error response from daemon: failed to create task for container: failed to create "
        "shim task: OCI runtime create failed: runc create failed: unable to start container "
        'process: exec: "/nonexistent": stat /nonexistent: no such file or directory: unknown'
    ) in missing.stderr
    not_executable = lab.exec("h1", *bounded, "--name", "never", TOOLS, "/etc", check=False)
    assert not_executable.returncode == 126 and "permission denied" in not_executable.stderr
    assert (
        lab.ferry("h1", "run", "--name", "never2", TOOLS, "/nonexistent", check=False).returncode
        == 127
    )
    # without --rm it stays, created, as in Docker; with --rm it is gone
    listed = {c["Names"][0]: c["State"] for c in lab.api("h1", "/containers/json", all=1)}
    assert set(listed) - before == {"/never", "/never2"}  # the --rm one is gone
    assert listed["/never"] == listed["/never2"] == "created"
    assert lab.ferry("h1", "wait", "never").stdout.strip() == "126"
    lab.ferry("h1", "rm", "never", "never2")


def test_container_prune_removes_only_stopped_ones(lab: LabRig) -> None:
    lab.ferry("h1", "run", "--name", "done1", TOOLS, "true")
    pruned = lab.ferry("h1", "container", "prune", "-f").stdout
    assert "Deleted Containers:" in pruned
    names = {c["Names"][0] for c in lab.api("h1", "/containers/json", all=1)}
    assert "/box" in names and "/done1" not in names
    for listing in (("ps", "-a"), ("ps",)):  # a wrong filter is refused with or without -a
        bogus = lab.exec("h1", "docker", *listing, "--filter", "status=bogus", check=False)
        assert bogus.returncode == 1 and "invalid filter 'status=bogus'" in bogus.stderr
    docker = lab.exec("h1", "docker", "container", "prune", "-f")
    assert "Total reclaimed space" in docker.stdout
    assert json.loads(lab.ferry("h1", "inspect", "box").stdout)[0]["State"]["Running"]
