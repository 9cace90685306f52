"""Request bodies of the local API: one bounded reader, one JSON decoder, one model check.

Every JSON body goes through ``read_model``: at most ``limit_bytes`` are read (a declared
``Content-Length`` above it is refused before anything is read), the JSON is decoded strictly
(no ``NaN``/``Infinity``, which Go's decoder refuses too), and the decoded value is walked once
before any model sees it: nesting deeper than ``MAX_DEPTH``, integers outside Go's int64 (every
number in Docker's API is an int64 or smaller) and strings holding a NUL byte (no argv, env entry
or file name can carry one) are refused naming where they are. A pydantic ``ValidationError``
becomes ``InvalidArgument`` naming the field. Each refusal is one line and a 400.

Be aware: image uploads are not JSON and do not come through here; they stream to disk
(``routes/images.py``).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ferry.errors import InvalidArgument
from ferry.weberrors import validation_message

M = TypeVar("M", bound=BaseModel)

KIB = 1024
MIB = 1024 * KIB
SMALL_BODY_BYTES = 64 * KIB  # swarm init/join, network connect, exec start
SPEC_BODY_BYTES = 1 * MIB  # container and service specs: commands, env, labels
MAX_DEPTH = 32  # Docker's deepest request shapes nest about 8 levels
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


async def read_bytes(request: web.Request, limit_bytes: int) -> bytes:
    """The body, refused once it exceeds ``limit_bytes`` (declared or actual)."""
    where = f"{request.method} {request.path}"
    declared = request.content_length
    if declared is not None and declared > limit_bytes:
        raise InvalidArgument(_too_large(where, declared, limit_bytes))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit_bytes:
            raise InvalidArgument(_too_large(where, size, limit_bytes))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(where: str, size: int, limit_bytes: int) -> str:
    return f"request body too large for {where}: {size} bytes or more, at most {limit_bytes}"


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


async def read_json(request: web.Request, limit_bytes: int = SPEC_BODY_BYTES) -> Any:
    """The body as checked JSON; an empty body is ``{}`` (Docker's clients send none for
    optional bodies)."""
    raw = await read_bytes(request, limit_bytes)
    if not raw.strip():
        return {}
    return loads(raw)


async def read_model(request: web.Request, model: type[M], limit_bytes: int = SPEC_BODY_BYTES) -> M:
    """The body validated into ``model``: 400 naming the first field that is wrong."""
    return validate(model, await read_json(request, limit_bytes))


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgument(validation_message(exc)) from exc
