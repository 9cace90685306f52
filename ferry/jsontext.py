"""JSON from anyone (request bodies, image archives' manifests and configs, registry
manifests, ``X-Registry-Auth``): decoded with its shape checked, so that no input can raise
anything but InvalidArgument (a 400): nesting at most 32 deep (json.loads would otherwise
recurse until RecursionError), integers within 64 bits, no NUL bytes, no NaN/Infinity."""

from __future__ import annotations

import json
from typing import Any

from ferry.errors import InvalidArgument

MAX_DEPTH = 32  # Docker's deepest request shapes nest about 8 levels; OCI manifests about 4
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: bytes | str, what: str = "request body") -> Any:
    """Decode JSON and check its shape (depth, integer range, NUL bytes); InvalidArgument."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError as exc:
        raise InvalidArgument(f"invalid JSON in {what}: nested deeper than {MAX_DEPTH}") from exc
    except ValueError as exc:  # includes UnicodeDecodeError and int digit limits
        raise InvalidArgument(f"invalid JSON in {what}: {exc}") from exc
    check_shape(value, what)
    return value


def check_shape(value: Any, what: str = "request body") -> None:
    """Walk a decoded JSON value without recursion; refuse what no request field can hold."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"invalid JSON in {what}: nested deeper than {MAX_DEPTH}")
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise InvalidArgument(f"invalid {what}: a NUL byte in the key {key!r}")
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str) and "\x00" in item:
            raise InvalidArgument(f"invalid {what}: {path or 'the value'} holds a NUL byte")
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            raise InvalidArgument(
                f"invalid {what}: {path or 'the value'} is out of range (a 64-bit integer)"
            )
