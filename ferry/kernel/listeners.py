"""Which ports of this network namespace are taken by sockets (``/proc/net/{tcp,udp}``).

/proc/net follows the network namespace of the reading task: ferryd reads its host's."""

from __future__ import annotations

TCP_LISTEN = "0A"


def _ports(path: str, tcp: bool) -> set[int]:
    ports: set[int] = set()
    try:
        with open(path) as f:
            next(f, None)  # header
            for line in f:
                fields = line.split()
                if len(fields) < 4:
                    continue
                if tcp and fields[3] != TCP_LISTEN:
                    continue
                if not tcp and not fields[2].endswith(":0000"):
                    continue  # a connected UDP socket (a client's) holds no port for others
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    except FileNotFoundError:
        pass
    return ports


def taken_ports() -> set[str]:
    """``"tcp/2377"``-style names of the listening TCP ports and bound UDP ports."""
    tcp = _ports("/proc/net/tcp", True) | _ports("/proc/net/tcp6", True)
    udp = _ports("/proc/net/udp", False) | _ports("/proc/net/udp6", False)
    return {f"tcp/{p}" for p in tcp} | {f"udp/{p}" for p in udp}


def tcp_listening_ports_of(pid: int) -> set[int]:
    """The listening TCP ports in the network namespace of process ``pid`` (empty when the
    process is gone): ``/proc/PID/net`` shows that process's namespace, not the reader's."""
    return _ports(f"/proc/{pid}/net/tcp", True) | _ports(f"/proc/{pid}/net/tcp6", True)
