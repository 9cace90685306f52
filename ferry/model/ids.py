"""Identifiers in Docker's shapes: 25-character base-36 ids for cluster objects, 64 hex digits
for containers and endpoints."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import TypeVar

from ferry.errors import InvalidArgument

T = TypeVar("T")

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_object_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(25))


def new_hex_id() -> str:
    return secrets.token_hex(32)


def lookup(
    items: Iterable[T], ref: str, names: Callable[[T], tuple[str, str]], what: str
) -> T | None:
    """Docker's lookup rule: a full id or name, else an unambiguous id prefix; None if nothing
    matches. ``names`` gives an item's (id, name). Two hits are an error, never a guess."""
    listed = list(items)
    exact = [item for item in listed if ref in names(item)]
    if len(exact) > 1:
        raise InvalidArgument(f"{what} {ref} is ambiguous ({len(exact)} matches): use the ID")
    if exact:
        return exact[0]
    prefixed = [item for item in listed if ref and names(item)[0].startswith(ref)]
    if len(prefixed) > 1:
        raise InvalidArgument(f"{what} {ref} is ambiguous ({len(prefixed)} matches)")
    return prefixed[0] if prefixed else None
