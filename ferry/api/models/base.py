"""The base of every API model: Docker's PascalCase names, JSON keys matched to them as Go's
``encoding/json`` matches keys to struct fields, unknown fields ignored unless a model keeps them
(``extra="allow"``) to refuse each by name.

Go's decoder (``encoding/json``, ``Unmarshal``: "preferring an exact match but also accepting a
case-insensitive match") is what every Docker client is written against: docker-py sends
``{"replicated": {"Replicas": 2}}`` for ``ServiceMode('replicated', replicas=2)``. So a key
that names a field exactly is that field; otherwise a key equal to a field's JSON name but for
case is that field; otherwise it is an unknown key, kept or ignored as the model says. When two
keys land on one field, the later one in the body wins, as the later assignment does in Go.

A ``null`` leaves a field as it was, as Go's decoder leaves a non-pointer field (``Unmarshal``:
"the JSON null value unmarshals into an interface, map, pointer, or slice by setting that Go
value to nil. Otherwise, unmarshaling a JSON null into any other Go type has no effect"):
docker-py sends ``"Timeout": null`` for a ``Healthcheck`` without one, ``"IPRange": null`` for
an ``IPAMPool`` without one, ``"Source": null`` for a tmpfs ``Mount``. So a ``null`` for a field
that cannot be ``None`` is dropped (the field keeps its default); where a field can be ``None``
it is ``None``.

Be aware: this renames keys of objects that are models only; the keys of maps (``Labels``,
``DriverOpts``, ``Options``) are data and keep their case.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class DockerModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _match_keys_as_go_does(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        exact, folded, not_nullable = _json_names(cls)
        matched: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                matched[key] = value
                continue
            name = key if key in exact else folded.get(key.casefold(), key)
            if value is None and name in not_nullable:
                continue  # Go: a null has no effect on a non-pointer field
            matched.pop(name, None)  # re-inserted last: the later key wins, as in Go
            matched[name] = value
        return matched


@cache
def _json_names(
    model: type[BaseModel],
) -> tuple[frozenset[str], dict[str, str], frozenset[str]]:
    """The names a key may match exactly (each field's JSON name and, with
    ``populate_by_name``, its Python name), the JSON names by their case-folded form, and the
    names (both kinds) of the fields that cannot hold ``None``."""
    exact: set[str] = set()
    folded: dict[str, str] = {}
    not_nullable: set[str] = set()
    for name, field in model.model_fields.items():
        json_name = field.alias or name
        exact.update((name, json_name))
        folded.setdefault(json_name.casefold(), json_name)
        if not _admits_none(field.annotation):
            not_nullable.update((name, json_name))
    return frozenset(exact), folded, frozenset(not_nullable)


def _admits_none(annotation: Any) -> bool:
    if annotation is None or annotation is Any or annotation is type(None):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_admits_none(arg) for arg in typing.get_args(annotation))
    return False


class ObjectVersion(DockerModel):
    Index: int = 0
