"""ferryd's systemd unit (``packaging/systemd/ferryd.service``): systemd itself checks it
(``systemd-analyze verify``, which must be on the machine: Debian's ``systemd`` package, on
every Debian 12 host), its choices are the ones the unit's comments argue for, and ferryd
speaks the readiness protocol its ``Type=notify`` waits for."""

from __future__ import annotations

import configparser
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ferry.errors import KernelError
from ferry.kernel import sdnotify

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "ferryd.service"
FERRYD = Path(sys.executable).parent / "ferryd"  # the one this checkout installed


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (Debian 12 has it)")
    return found


def verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on ``unit_text`` with ExecStart pointed at this checkout's
    ferryd (verify checks the binary exists; the shipped path is checked apart)."""
    text = unit_text.replace("ExecStart=/usr/local/bin/ferryd", f"ExecStart={FERRYD}")
    path = tmp_path / "ferryd.service"
    path.write_text(text)
    return subprocess.run(
        [analyze(), "verify", "--man=no", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_systemd_verifies_the_unit_without_a_word(tmp_path: Path) -> None:
    assert FERRYD.exists()
    done = verify(UNIT.read_text(), tmp_path)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_verify_would_catch_a_wrong_setting(tmp_path: Path) -> None:
    """The check above is not vacuous: systemd names a wrong value (and only warns, rc 0)."""
    done = verify(UNIT.read_text().replace("KillMode=process", "KillMode=proces"), tmp_path)
    assert "Failed to parse kill mode specification" in done.stderr


def test_the_unit_s_choices() -> None:
    svc = service()
    assert svc["ExecStart"] == "/usr/local/bin/ferryd"  # settings: /etc/ferry/daemon.json
    assert svc["Type"] == "notify"
    assert svc["Restart"] == "on-failure"
    assert svc["KillMode"] == "process"  # conmon and etcd outlive a restart of ferryd
    assert svc["LimitNOFILE"] == "1048576"
    assert "Delegate" not in svc
    unit_text = UNIT.read_text()
    assert "After=network-online.target" in unit_text
    assert "Wants=network-online.target" in unit_text


def test_ready_reaches_a_notify_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        assert sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": str(path)})
        assert listener.recv(64) == b"READY=1"


def test_an_abstract_notify_socket_is_written_with_an_at_sign(tmp_path: Path) -> None:
    name = f"ferry-test-{tmp_path.name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        assert sdnotify.notify(sdnotify.STOPPING, {"NOTIFY_SOCKET": "@" + name})
        assert listener.recv(64) == b"STOPPING=1"


def test_outside_systemd_nothing_is_sent_and_a_dead_socket_is_named(tmp_path: Path) -> None:
    assert sdnotify.notify(sdnotify.READY, {}) is False
    with pytest.raises(KernelError, match=r"sd_notify .*/gone failed"):
        sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": str(tmp_path / "gone")})
