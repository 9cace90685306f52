"""Telling systemd how ferryd is doing: sd_notify(3)'s protocol, without libsystemd.

A unit of ``Type=notify`` (``packaging/systemd/ferryd.service``) is started only once its main
process sends ``READY=1`` to the datagram socket named by ``$NOTIFY_SOCKET`` (a path, or an
abstract name written with a leading ``@``). Outside systemd the variable is unset and nothing
is sent. Be aware: systemd takes the message only from the unit's main process
(``NotifyAccess=main``), so this must run in ferryd itself, not in a child.
"""

from __future__ import annotations

import os
import socket

from ferry.errors import KernelError

READY = "READY=1"
STOPPING = "STOPPING=1"


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``, …) to systemd; False when ferryd runs
    outside a notify unit. Raises KernelError when the socket is named but refuses it."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket (unix(7))
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        raise KernelError("sd_notify", env["NOTIFY_SOCKET"], exc.errno, exc.strerror or "") from exc
    return True
