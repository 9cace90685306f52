"""The pure parts of the runtime: users in an image, the monitor's log records, the files a
container gets, the monitor's command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.errors import InvalidArgument
from ferry.model.container import AttachedEndpoint, ContainerConfig
from ferry.model.runopts import MountType, parse_tmpfs
from ferry.runtime import changes, logs, monitor
from ferry.runtime.oci import ResolvedUser
from ferry.runtime.runner import hosts_file, read_in_root, resolv_conf, tmpfs_options
from ferry.runtime.users import resolve_user

PASSWD = "root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nvideo:x:44:\n"
CONFIG = ContainerConfig("a" * 64, "app1", "tools", ("sleep", "3600"), extra_hosts=("db:10.1.2.3",))
EP = AttachedEndpoint(
    "net", "blue", "overlay", "ep", "10.0.0.2", 24, "10.0.0.1", "02:42:0a:00:00:02", "eth0"
)


def test_users_resolve_as_runc_resolves_them() -> None:
    assert resolve_user("", (), PASSWD, GROUP) == ResolvedUser(0, 0, (), "/root")
    assert resolve_user("app", (), PASSWD, GROUP) == ResolvedUser(1000, 1000, (50,), "/home/app")
    assert resolve_user("1000:staff", ("video", "7"), PASSWD, GROUP) == ResolvedUser(
        1000, 50, (44, 7), "/home/app"
    )
    assert resolve_user("4242", (), PASSWD, GROUP) == ResolvedUser(4242, 0, (), "/")
    assert resolve_user("0", (), "", "") == ResolvedUser(0, 0, (), "/")
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        resolve_user("nobody", (), PASSWD, GROUP)
    with pytest.raises(InvalidArgument, match="unable to find group wheel"):
        resolve_user("app:wheel", (), PASSWD, GROUP)


def test_image_files_are_never_read_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text(GROUP)
    (tmp_path / "etc" / "passwd").symlink_to("/etc/shadow")
    assert read_in_root(tmp_path, "etc/group") == GROUP
    assert read_in_root(tmp_path, "etc/passwd") == ""
    assert read_in_root(tmp_path, "etc/missing") == ""


def test_log_records_keep_stream_time_and_partial_lines() -> None:
    data = (
        b"2026-11-30T06:11:07.789766267+00:00 stdout P ab\n"
        b"2026-11-30T06:11:07.789766267+00:00 stdout F cd\n"
        b"2026-11-30T06:11:08.000000001+00:00 stderr F oops\n"
        b"2026-11-30T06:11:09"
    )
    records, used = logs.parse(data)
    assert used == data.rfind(b"\n") + 1
    assert [(r.stream, r.data) for r in records] == [(1, b"ab"), (1, b"cd\n"), (2, b"oops\n")]
    assert records[2].docker_time() == "2026-11-30T06:11:08.000000001Z"
    assert logs.render(records[1], True) == b"2026-11-30T06:11:07.789766267Z cd\n"
    assert logs.tail(records, 1) == records[2:]
    assert logs.tail(records, 2) == records
    late = list(logs.select(records, since_s=records[2].epoch_s))
    assert late == records[2:]
    assert list(logs.select(records, streams=frozenset({2}))) == records[2:]


def test_since_takes_unix_times_rfc3339_and_durations() -> None:
    assert logs.parse_since("1700000000.5", 0) == 1700000000.5
    assert logs.parse_since("10m", 1000.0) == 400.0
    assert logs.parse_since("1h30m", 10000.0) == 4600.0
    assert logs.parse_since("2026-11-30T06:11:08Z", 0) == logs.parse_since(
        "2026-11-30T06:11:08+00:00", 0
    )
    assert logs.parse_since("", 5.0) == 0.0
    with pytest.raises(InvalidArgument):
        logs.parse_since("yesterday", 0)


def test_the_containers_own_files() -> None:
    hosts = hosts_file(CONFIG, (EP,))
    assert "10.1.2.3\tdb\n" in hosts
    assert hosts.endswith("10.0.0.2\taaaaaaaaaaaa\n")
    assert resolv_conf().startswith("nameserver 127.0.0.11\n")


def test_tmpfs_gets_dockers_defaults_unless_overridden() -> None:
    assert tmpfs_options(parse_tmpfs("/run")) == ("noexec", "nosuid", "nodev")
    assert tmpfs_options(parse_tmpfs("/run", "exec,size=1k")) == ("nosuid", "nodev", "size=1024")
    assert parse_tmpfs("/x").type == MountType.TMPFS


def test_conmon_runs_runc_with_ferrys_root_and_the_containers_files() -> None:
    paths = monitor.MonitorPaths(Path("/s/c/" + "a" * 64), Path("/run/ferry/sock"), "a" * 12)
    argv = monitor.conmon_argv(
        "a" * 64, "app1", paths, ["/usr/sbin/runc", "--root", "/run/ferry/runc"],
        tty=True, stdin=True, leave_stdin_open=False,
    )  # fmt: skip
    assert argv[0] == "conmon"
    assert argv[argv.index("--runtime") + 1] == "/usr/sbin/runc"
    assert argv[argv.index("--bundle") + 1] == f"/s/c/{'a' * 64}/bundle"
    assert f"k8s-file:/s/c/{'a' * 64}/container.log" in argv
    assert argv[-6:-2] == ["--runtime-arg", "--root", "--runtime-arg", "/run/ferry/runc"]
    assert argv[-2:] == ["--terminal", "--stdin"]
    assert str(paths.attach_socket) == "/run/ferry/sock/aaaaaaaaaaaa/attach"
    assert len(str(paths.attach_socket)) < 108


def test_diff_lists_additions_changes_and_deletions_but_not_the_runtimes_files(
    tmp_path: Path,
) -> None:
    lower = tmp_path / "lower"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "motd").write_text("hi")
    (lower / "link").symlink_to("/etc")  # a link of the image never leads onto the host
    entries = [("/etc", False), ("/etc/motd", False), ("/etc/new", False), ("/bin/gone", True),
               ("/etc/hosts", False), ("/data", False), ("/link/passwd", False)]  # fmt: skip
    found = changes.plan_changes(
        entries, changes.in_lower([lower]), changes.RUNTIME_PATHS | {"/data"}
    )
    assert found == [
        {"Path": "/bin/gone", "Kind": changes.DELETED},
        {"Path": "/etc", "Kind": changes.MODIFIED},
        {"Path": "/etc/motd", "Kind": changes.MODIFIED},
        {"Path": "/etc/new", "Kind": changes.ADDED},
        {"Path": "/link/passwd", "Kind": changes.ADDED},
    ]


def test_health_follows_dockers_rules() -> None:
    from ferry.agent.health import HEALTHY, STARTING, UNHEALTHY, next_state
    from ferry.model.runopts import Healthcheck

    check = Healthcheck(("CMD", "true"), retries=2)
    assert next_state(check, STARTING, 0, True, False) == (HEALTHY, 0)
    assert next_state(check, STARTING, 0, False, True) == (STARTING, 0)  # start period
    assert next_state(check, HEALTHY, 0, False, True) == (HEALTHY, 1)  # counts once healthy
    assert next_state(check, HEALTHY, 1, False, False) == (UNHEALTHY, 2)
    assert next_state(check, UNHEALTHY, 2, True, False) == (HEALTHY, 0)
