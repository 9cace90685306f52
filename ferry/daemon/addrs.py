"""Choosing the address a node advertises to the swarm (Docker's rules, as plain data)."""

from __future__ import annotations

import ipaddress

from ferry.errors import InvalidArgument


def choose_advertise_addr(
    requested: str, addresses: list[tuple[str, str]], default_dev: str | None
) -> str:
    """``requested`` may be an IP, an interface name, or empty (pick the obvious one)."""
    usable = [(dev, ip) for dev, ip in addresses if not ipaddress.ip_address(ip).is_loopback]
    if requested:
        host = requested.rsplit(":", 1)[0] if requested.count(":") == 1 else requested
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            pass
        on_dev = [ip for dev, ip in usable if dev == host]
        if not on_dev:
            raise InvalidArgument(
                f"advertise address must be an IPv4 address or an interface name with one "
                f"(got {requested!r})"
            )
        return on_dev[0]
    if default_dev is not None:
        on_default = [ip for dev, ip in usable if dev == default_dev]
        if on_default:
            return on_default[0]
    if len(usable) == 1:
        return usable[0][1]
    if not usable:
        raise InvalidArgument("could not find an address to advertise: use --advertise-addr")
    listing = ", ".join(f"{ip} on {dev}" for dev, ip in usable)
    raise InvalidArgument(
        f"could not choose an IP address to advertise since this system has multiple addresses "
        f"({listing}): use --advertise-addr"
    )


def with_port(addr: str, default_port: int) -> str:
    host, sep, port = addr.rpartition(":")
    if sep and port.isdigit() and host:
        return addr
    return f"{addr}:{default_port}"
