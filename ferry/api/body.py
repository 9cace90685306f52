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

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ferry.errors import InvalidArgument
from ferry.jsontext import MAX_DEPTH, check_shape, loads
from ferry.weberrors import validation_message

M = TypeVar("M", bound=BaseModel)

KIB = 1024
MIB = 1024 * KIB
SMALL_BODY_BYTES = 64 * KIB  # swarm init/join, network connect, exec start
SPEC_BODY_BYTES = 1 * MIB  # container and service specs: commands, env, labels


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


__all__ = ["MAX_DEPTH", "check_shape", "loads"]
