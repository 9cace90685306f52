"""Swarm secrets and configs (``docker secret``, ``docker config``): what one is, and Docker's
rules for making, changing and listing them. Plain data, no I/O.

Sources: swarmkit ``manager/controlapi/secret.go`` and ``config.go`` (the name rule, the size
limit, "only updates to Labels are allowed", the list filters), moby
``daemon/cluster/filters.go`` (the filter keys: ``id``, ``label``, ``name``, ``names``).

Be aware: ``data`` is what the store keeps. For a secret it is sealed (``sealing.seal`` with
the swarm's data key; ``manager/secrets.py``) and never shown; for a config it is the data in
standard base64, shown by inspect as Docker does (configs are not secret).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from ferry.errors import InvalidArgument
from ferry.model import filters as f

# swarmkit's validateSecretSpec/validateConfigSpec: 64 characters at most
NAME_RE = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")
MAX_NAME_CHARS = 64
MAX_DATA_BYTES = 500 * 1024  # swarmkit's MaxSecretSize; Ferry keeps configs to it too
LIST_FILTERS = ("id", "label", "name", "names")
# spec fields Ferry accepts but honours only empty: it has no secret drivers or templating
UNHONOURED_FIELDS = ("Driver", "Templating")


class Kind(Enum):
    SECRET = "secret"
    CONFIG = "config"


@dataclass(frozen=True)
class SwarmObject:
    """A secret or a config, as the store keeps it under ``swarmsecrets/`` or ``configs/``.
    Times are RFC 3339 (UTC)."""

    obj_id: str
    name: str
    data: str  # a secret's sealed data, a config's data in base64: see the module notes
    labels: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""


def rpc_invalid(message: str) -> InvalidArgument:
    """Docker passes swarmkit's gRPC errors through: InvalidArgument in its words."""
    return InvalidArgument(f"rpc error: code = InvalidArgument desc = {message}")


def check_name(name: str) -> str:
    """The name, if Docker takes it; InvalidArgument in swarmkit's words otherwise."""
    if not name or len(name) > MAX_NAME_CHARS or not NAME_RE.match(name):
        raise rpc_invalid(
            f"invalid name, only {MAX_NAME_CHARS} [a-zA-Z0-9-_.] characters allowed, and the "
            "start and end character must be [a-zA-Z0-9]"
        )
    return name


def check_data(kind: Kind, data: bytes) -> bytes:
    """The data, if between 1 byte and 500 KiB (exclusive, as swarmkit checks it)."""
    if not 0 < len(data) < MAX_DATA_BYTES:
        raise rpc_invalid(f"{kind.value} data must be larger than 0 and less than 500 KiB")
    return data


def check_unhonoured(spec: Mapping[str, object]) -> None:
    """Refuse ``Driver`` or ``Templating`` given a value (InvalidArgument naming the field):
    Ferry keeps the data itself and substitutes nothing, so either would be ignored."""
    for name in UNHONOURED_FIELDS:
        if spec.get(name):
            raise InvalidArgument(
                f"{name} is not supported: Ferry keeps the data itself and has no "
                f"{'drivers' if name == 'Driver' else 'templating'}; leave {name} out"
            )


def check_update(current: SwarmObject, name: str, data: bytes | None, held: bytes) -> None:
    """Only the labels may change (swarmkit ``UpdateSecret``/``UpdateConfig``): a different
    name, or data given that differs from what the object ``held`` (a secret's opened), is
    refused in Docker's words. The same data passes: ``docker stack deploy`` sends it back on
    every deploy."""
    if name != current.name or (data is not None and data != held):
        raise rpc_invalid("only updates to Labels are allowed")


def config_bytes(obj: SwarmObject) -> bytes:
    """A config's data (its store form is base64)."""
    return base64.b64decode(obj.data)


def list_rules(obj: SwarmObject) -> dict[str, f.Rule]:
    """``GET /secrets``/``/configs`` filters (swarmkit ListSecrets): ``id`` and ``name`` are
    prefixes, ``names`` exact names, ``label`` Docker's KEY or KEY=VALUE."""
    return {
        "id": lambda v: f.prefix(v, obj.obj_id),
        "name": lambda v: f.prefix(v, obj.name),
        "names": lambda v: f.exact(v, obj.name),
        "label": lambda v: f.labels(v, obj.labels),
    }
