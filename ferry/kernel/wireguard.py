"""WireGuard for encrypted overlays: keys, the tunnel device and its peers.

The device is the kernel's WireGuard where the module exists, else ``wireguard-go`` (a TUN
device run by a userspace process, started in its own session so it outlives a restart of
ferryd, and found again by its recorded pid and start time). Keys and peers go through
``wg(8)``, which speaks to either.

Be aware: wireguard-go's control socket is ``/var/run/wireguard/<ifname>.sock`` whatever the
namespace, so two hosts of a lab must not share a device name (see ``tunnel_ifname``). The
private key is handed to ``wg`` as a file, never on a command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ferry.errors import FerryError, KernelError
from ferry.kernel import proc
from ferry.kernel.netlink import Netlink

WG_TIMEOUT_S = 5.0
DEVICE_WAIT_S = 5.0
SOCKET_DIR = Path("/var/run/wireguard")


def _wg(*args: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            ["wg", *args], input=stdin, capture_output=True, text=True, timeout=WG_TIMEOUT_S,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelError("wg", " ".join(args[:2]), None, str(exc)) from exc
    if done.returncode != 0:
        raise KernelError("wg", " ".join(args[:2]), None, done.stderr.strip() or "failed")
    return done.stdout


def new_private_key() -> str:
    return _wg("genkey").strip()


def public_key(private_key: str) -> str:
    return _wg("pubkey", stdin=private_key + "\n").strip()


@dataclass(frozen=True, order=True)
class Tunnel:
    """One peer as the device holds it: its key and the host it is reached at (its endpoint
    address, and the only address allowed through it)."""

    key: str
    addr: str


class WireGuardDevice:
    """The tunnel device ``ifname`` in ferryd's namespace. Blocking calls: run them on the
    kernel thread."""

    def __init__(self, ifname: str, state_file: Path, log_path: Path) -> None:
        self.ifname = ifname
        self._state_file = state_file  # the wireguard-go process, if there is one
        self._log_path = log_path

    def exists(self) -> bool:
        with Netlink() as nl:
            return nl.index(self.ifname) is not None

    def process(self) -> proc.ProcRef | None:
        """The wireguard-go process serving the device, if it runs."""
        try:
            record = json.loads(self._state_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        ref = proc.ProcRef(record["pid"], record["start_time"])
        if ref.alive():
            return ref
        proc.reap_exited(ref)  # our child, if this ferryd started it: no zombie left behind
        return None

    def create(self, mtu: int) -> None:
        """Make the device (kernel module, else wireguard-go) and bring it up at ``mtu``."""
        with Netlink() as nl:
            try:
                nl.add_link(self.ifname, "wireguard")
            except KernelError:
                self._spawn_userspace()
            nl.set_link(self.ifname, mtu=mtu, up=True)

    def _spawn_userspace(self) -> None:
        (SOCKET_DIR / f"{self.ifname}.sock").unlink(missing_ok=True)  # a killed one's leftover
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LOG_LEVEL": "error"}
        ref = proc.spawn(["wireguard-go", "-f", self.ifname], env=env, log_path=self._log_path)
        self._state_file.write_text(json.dumps({"pid": ref.pid, "start_time": ref.start_time}))
        deadline = time.monotonic() + DEVICE_WAIT_S
        while not (self.exists() and (SOCKET_DIR / f"{self.ifname}.sock").exists()):
            if not ref.alive() or time.monotonic() > deadline:
                proc.signal_process(ref, signal.SIGKILL)
                raise KernelError(
                    "start wireguard-go", self.ifname, None, f"no device; see {self._log_path}"
                )
            time.sleep(0.02)

    def configure(self, key_file: Path, port: int) -> None:
        _wg("set", self.ifname, "private-key", str(key_file), "listen-port", str(port))

    def tunnels(self) -> set[Tunnel]:
        """The peers the device holds (``wg show dump``: one line per peer after the first)."""
        out = set()
        for line in _wg("show", self.ifname, "dump").splitlines()[1:]:
            fields = line.split("\t")
            endpoint = fields[2]
            addr = endpoint.rsplit(":", 1)[0] if endpoint != "(none)" else ""
            out.add(Tunnel(fields[0], addr))
        return out

    def add_tunnel(self, tunnel: Tunnel, port: int) -> None:
        _wg(
            "set", self.ifname, "peer", tunnel.key,
            "endpoint", f"{tunnel.addr}:{port}", "allowed-ips", f"{tunnel.addr}/32",
        )  # fmt: skip

    def remove_tunnel(self, key: str) -> None:
        _wg("set", self.ifname, "peer", key, "remove")

    def delete(self) -> None:
        """Remove the device, and stop wireguard-go if it served it."""
        ref = self.process()
        try:
            with Netlink() as nl:
                nl.delete_link(self.ifname)
        except FerryError:
            pass
        if ref is not None:
            proc.signal_process(ref, signal.SIGTERM)  # it removes its socket on the way out
            for _ in range(100):
                if not ref.alive():
                    break
                time.sleep(0.02)
            else:
                proc.signal_process(ref, signal.SIGKILL)
            proc.reap_exited(ref)
        self._state_file.unlink(missing_ok=True)
        (SOCKET_DIR / f"{self.ifname}.sock").unlink(missing_ok=True)
