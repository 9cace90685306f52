"""JSON for domain models, one cached pydantic adapter per type (models stay plain dataclasses)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def encode(obj: object) -> bytes:
    return _adapter(type(obj)).dump_json(obj)


def decode(cls: type[T], raw: bytes | str) -> T:
    value: T = _adapter(cls).validate_json(raw)
    return value


def decode_plain(cls: type[T], value: Any) -> T:
    """Decode an already-parsed JSON value (what a JSON stream hands over)."""
    result: T = _adapter(cls).validate_python(value)
    return result


def to_plain(obj: object) -> Any:
    return _adapter(type(obj)).dump_python(obj, mode="json")
