"""Port specifications as Docker writes them: ``8080:80``, ``8080:80/udp``, and the long form
``published=8080,target=80,protocol=tcp,mode=ingress``."""

from __future__ import annotations

from typing import Any

from ferry.errors import InvalidArgument


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InvalidArgument(f"invalid {what} port {text!r}: use a number from 1 to 65535")
    return int(text)


def parse_publish(text: str) -> dict[str, Any]:
    if "=" in text:
        fields = dict(part.partition("=")[::2] for part in text.split(","))
        unknown = set(fields) - {"published", "target", "protocol", "mode"}
        if unknown:
            raise InvalidArgument(
                f"invalid publish option(s) {', '.join(sorted(unknown))} in {text!r}"
            )
        if "target" not in fields:
            raise InvalidArgument(f"invalid publish spec {text!r}: target=PORT is required")
        published, target = fields.get("published", ""), fields["target"]
        protocol, mode = fields.get("protocol", "tcp"), fields.get("mode", "ingress")
    else:
        spec, _, protocol = text.partition("/")
        protocol = protocol or "tcp"
        published, sep, target = spec.rpartition(":")
        if not sep:
            raise InvalidArgument(f"invalid publish spec {text!r}: use PUBLISHED:TARGET[/PROTOCOL]")
        mode = "ingress"
    if protocol not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid protocol {protocol!r}: use tcp or udp")
    if mode not in ("ingress", "host"):
        raise InvalidArgument(f"invalid publish mode {mode!r}: use ingress or host")
    return {
        "Protocol": protocol,
        "TargetPort": _port(target, "target"),
        "PublishedPort": _port(published, "published") if published else 0,
        "PublishMode": mode,
    }


def port_bindings(specs: list[str]) -> dict[str, list[dict[str, str]]]:
    """``run -p [IP:]PUBLISHED:TARGET[/PROTO]`` as Docker's HostConfig.PortBindings."""
    out: dict[str, list[dict[str, str]]] = {}
    for text in specs:
        spec, _, protocol = text.partition("/")
        protocol = protocol or "tcp"
        if protocol not in ("tcp", "udp"):
            raise InvalidArgument(f"invalid protocol {protocol!r} in {text!r}: use tcp or udp")
        parts = spec.split(":")
        if len(parts) == 2:
            host_ip, published, target = "", parts[0], parts[1]
        elif len(parts) == 3:
            host_ip, published, target = parts
        else:
            raise InvalidArgument(
                f"invalid publish spec {text!r}: use [IP:]PUBLISHED:TARGET[/PROTO]"
            )
        binding = {"HostIp": host_ip, "HostPort": str(_port(published, "published"))}
        out.setdefault(f"{_port(target, 'target')}/{protocol}", []).append(binding)
    return out
