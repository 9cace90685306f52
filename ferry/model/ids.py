"""Identifiers in Docker's shapes: 25-character base-36 ids for cluster objects, 64 hex digits
for containers and endpoints."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_object_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(25))


def new_hex_id() -> str:
    return secrets.token_hex(32)


def matches(candidate_id: str, name: str, query: str) -> bool:
    """Docker's lookup rule: a full name, a full id, or an unambiguous id prefix."""
    return query in (name, candidate_id) or (len(query) >= 1 and candidate_id.startswith(query))
