"""What a hostile tester found in the runc containers, each on a real lab: the streams a client
attaches are the only ones it gets, execs that cannot start end with Docker's code and
message, and bad values are refused before anything starts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry.api.client import ApiClient
from ferry.cli.streams import frames, socket_chunks
from tests.integration.lablib import TOOLS, LabRig, new_lab, wait_until

pytestmark = pytest.mark.integration
BOTH = "echo out; echo err >&2; exit 3"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with new_lab(hosts=1) as rig:
        rig.ferry("h1", "run", "-d", "--name", "box", TOOLS, "sleep", "1000")
        yield rig


def docker(lab: LabRig, *args: str) -> tuple[int, str, str]:
    result = lab.exec("h1", "docker", *args, check=False)
    return result.returncode, result.stdout, result.stderr


def test_run_attaches_only_the_streams_asked_for(lab: LabRig) -> None:
    assert docker(lab, "run", "--rm", "-a", "stdout", TOOLS, "sh", "-c", BOTH) == (3, "out\n", "")
    assert docker(lab, "run", "--rm", "-a", "stderr", TOOLS, "sh", "-c", BOTH) == (3, "", "err\n")
    code, out, err = docker(lab, "run", "--rm", "-a", "stdin", TOOLS, "sh", "-c", BOTH)
    assert code == 3 and "out" not in out and "panic" not in err and "err" not in err


def test_exec_and_logs_send_only_the_streams_asked_for(lab: LabRig) -> None:
    api = ApiClient(lab.socket("h1"), timeout_s=30)
    for stdout, stderr in ((True, False), (False, True)):
        exec_id = api.post("/containers/box/exec", {
            "Cmd": ["sh", "-c", BOTH], "AttachStdout": stdout, "AttachStderr": stderr,
        })["Id"]  # fmt: skip
        sock = api.hijack(f"/exec/{exec_id}/start", {"Detach": False})
        with sock:
            got = list(frames(socket_chunks(sock.fileno())))
        assert got == ([(1, b"out\n")] if stdout else [(2, b"err\n")])
        assert api.get(f"/exec/{exec_id}/json")["ExitCode"] == 3
    lab.ferry("h1", "run", "--name", "said", TOOLS, "sh", "-c", BOTH, check=False)
    assert docker(lab, "logs", "said")[1:] == ("out\n", "err\n")
    only = lab.ferry("h1", "logs", "said", check=False)
    assert (only.stdout, only.stderr) == ("out\n", "err\n")
    with pytest.raises(Exception, match="at least one stream"):
        api.get("/containers/said/logs")


def test_an_exec_that_cannot_start_ends_with_dockers_code_and_message(lab: LabRig) -> None:
    oci = "OCI runtime exec failed: exec failed: unable to start container process: "
    cases = [
        (("-u", "nosuch", "box", "sh", "-c", "echo ran; exit 5"), 126,
         "unable to find user nosuch: no matching entries in passwd file"),
        (("-u", "root:nosuchgrp", "box", "true"), 126, "unable to find group nosuchgrp"),
        (("-w", "/nope", "box", "true"), 126, oci + 'chdir to cwd ("/nope")'),
        (("box", "nosuchcmd"), 127,
         oci + 'exec: "nosuchcmd": executable file not found in $PATH: unknown'),
        (("box", "/etc/passwd"), 126, oci + 'exec: "/etc/passwd": permission denied: unknown'),
        (("-t", "box", "nosuchcmd"), 127, "executable file not found in $PATH: unknown"),
    ]  # fmt: skip
    for args, code, message in cases:
        got, out, err = docker(lab, "exec", *args)
        assert got == code and message in out, (args, got, out, err)
        assert "level=error" not in out + err and "ran" not in out, (args, out, err)
        assert out.count("unable to start") <= 1, out  # runc's own line is not passed on
        mine = lab.ferry("h1", "exec", *args, check=False)
        assert mine.returncode == code and message in mine.stdout, (args, mine)
    api = ApiClient(lab.socket("h1"), timeout_s=30)
    exec_id = api.post("/containers/box/exec", {"Cmd": ["id"], "User": "nosuch"})["Id"]
    api.post(f"/exec/{exec_id}/start", {"Detach": True})
    wait_until(lambda: not api.get(f"/exec/{exec_id}/json")["Running"], 30, "the exec ends")
    assert api.get(f"/exec/{exec_id}/json")["ExitCode"] == 126


def test_a_container_whose_command_cannot_start_exits_as_docker_run_does(lab: LabRig) -> None:
    missing = lab.ferry("h1", "run", "--rm", TOOLS, "/nonexistent", check=False)
    assert missing.returncode == 127 and "no such file or directory" in missing.stderr
    denied = lab.ferry("h1", "run", "--rm", TOOLS, "/etc/passwd", check=False)
    assert denied.returncode == 126 and "permission denied" in denied.stderr


def test_port_of_a_port_not_published_is_an_error_as_dockers(lab: LabRig) -> None:
    for typed in ("81", "81/tcp", "81/udp"):
        result = lab.ferry("h1", "port", "box", typed, check=False)
        assert result.returncode == 1
        assert result.stderr.strip() == f"Error: No public port '{typed}' published for box"
        assert docker(lab, "port", "box", typed)[0] == 1
    assert lab.ferry("h1", "port", "box").stdout == ""


def test_inspect_has_dockers_host_config_fields(lab: LabRig) -> None:
    code, out, err = docker(lab, "inspect", "-f", "{{.HostConfig.BlkioWeight}}", "box")
    assert (code, out) == (0, "0\n"), err
    host = lab.api("h1", "/containers/box/json")["HostConfig"]
    assert host["BlkioWeight"] == 0 and host["Devices"] == [] and host["Runtime"] == "runc"


BAD_HOST_CONFIGS = [
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 2048, "Hard": 1024}]}, "soft limit must be less"),
    ({"NanoCpus": -1}, "Range of CPUs is from 0.01 to"),
    ({"NanoCpus": 1_000_000}, "Range of CPUs is from 0.01 to"),
    ({"NanoCpus": 4096 * 10**9}, "Range of CPUs is from 0.01 to"),
    ({"Memory": 1 << 20}, "Minimum memory limit allowed is 6MB"),
    ({"Binds": ["/tmp:/proc"]}, "destination '/proc'"),
    ({"Binds": ["/tmp:/proc/kcore"]}, "destination '/proc/kcore' is inside /proc"),
    ({"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/dev"}]}, "destination '/dev'"),
]


@pytest.mark.parametrize(("host", "message"), BAD_HOST_CONFIGS)
def test_bad_resource_and_mount_values_are_refused_at_create(
    lab: LabRig, host: dict[str, object], message: str
) -> None:
    api = ApiClient(lab.socket("h1"), timeout_s=30)
    before = len(api.get("/containers/json", all=1))
    with pytest.raises(Exception, match=message) as refused:
        api.post("/containers/create", {"Image": TOOLS, "Cmd": ["true"], "HostConfig": host})
    assert getattr(refused.value, "exit_code", None) == 2  # InvalidArgument: a 400
    assert len(api.get("/containers/json", all=1)) == before


def test_update_checks_resources_as_create_does(lab: LabRig) -> None:
    refused = lab.ferry("h1", "update", "--cpus", "4096", "box", check=False)
    assert refused.returncode == 2 and "Range of CPUs is from 0.01 to" in refused.stderr
    assert docker(lab, "update", "--cpus", "0.001", "box")[0] != 0


def test_endpoint_settings_ferry_does_not_apply_are_refused_by_name(lab: LabRig) -> None:
    code, _, err = docker(lab, "run", "--rm", "--mac-address", "02:42:ac:11:00:99", TOOLS, "true")
    assert code == 125 and "does not support NetworkingConfig.EndpointsConfig" in err
    assert "MacAddress" in err
    code, _, err = docker(lab, "run", "--rm", "--ip6", "fd00::5", TOOLS, "true")
    assert code == 125 and "IPAMConfig.IPv6Address" in err
    lab.ferry("h1", "network", "create", "side")
    code, _, err = docker(lab, "network", "connect", "--link", "box:x", "side", "box")
    assert code != 0 and "does not support EndpointConfig.Links" in err
    assert "side" not in lab.api("h1", "/containers/box/json")["NetworkSettings"]["Networks"]


def test_cp_copies_a_link_as_docker_cp_does_and_refuses_a_paused_container(
    lab: LabRig, tmp_path: Path
) -> None:
    link = lab.ferry("h1", "cp", "box:/etc/os-release", str(tmp_path / "link"), check=False)
    assert link.returncode == 0 and "Traceback" not in link.stderr, link.stderr
    assert os.readlink(tmp_path / "link") == "../usr/lib/os-release"
    lab.ferry("h1", "cp", "-L", "box:/etc/os-release", str(tmp_path / "file"))
    assert "ID=" in (tmp_path / "file").read_text()
    lab.ferry("h1", "cp", "-L", "box:/etc/os-release", str(tmp_path))
    assert "ID=" in (tmp_path / "os-release").read_text()
    lab.ferry("h1", "pause", "box")
    try:
        paused = lab.ferry("h1", "cp", "box:/etc/hostname", str(tmp_path / "h"), check=False)
    finally:
        lab.ferry("h1", "unpause", "box")
    assert paused.returncode == 4 and "Container box is paused" in paused.stderr
    assert len(paused.stderr.strip().splitlines()) == 1
