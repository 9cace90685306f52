"""The Dockerfile lines ``docker import -c`` (and ``commit -c``) takes, applied to an image's
``Config`` (pure data, no I/O).

Docker's daemon reads them with its Dockerfile parser and accepts only the instructions that
describe a config (``builder/dockerfile``'s ``validCommitCommands``): CMD, ENTRYPOINT, ENV,
EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. Anything else (RUN,
COPY, FROM…) is refused in one line that names it, as Docker refuses it.

Be aware: ``HEALTHCHECK --start-interval`` is refused by name: Ferry's health checks have no
start interval (``docker run --health-start-interval`` is refused the same way). Line
continuations and parser directives of a Dockerfile do not apply: each ``-c`` is one line.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ferry.errors import InvalidArgument
from ferry.model.runopts import parse_duration

CHANGE_KEYS = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)
NS = 1_000_000_000  # a HealthConfig's durations are nanoseconds
MIN_DURATION_S = 0.001  # Docker's container.MinimumDuration
HEALTH_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod"}


def _json_form(rest: str) -> list[str] | None:
    """A Dockerfile's exec form: a JSON list of strings, else None (the shell form)."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _command(rest: str) -> list[str]:
    """Exec form (a JSON list) or shell form, which Docker runs as ``/bin/sh -c``."""
    form = _json_form(rest)
    return form if form is not None else ["/bin/sh", "-c", rest]


def _json_list(rest: str) -> list[str]:
    form = _json_form(rest)
    if form is None:
        raise InvalidArgument(f"{rest!r} is not a JSON list of strings")
    return form


def _pairs(rest: str, key: str) -> dict[str, str]:
    """``K=V K2="v 2"`` (or the legacy ``K V`` for one pair), as a Dockerfile reads them."""
    words = shlex.split(rest)
    if words and "=" not in words[0]:
        if len(words) < 2 and key == "ENV":
            raise InvalidArgument(f"{key} needs a value: {key} NAME=VALUE")
        name, _, value = rest.partition(" ")
        return {name: value.strip()}
    out = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise InvalidArgument(f"{key} takes NAME=VALUE pairs, not {word!r}")
        out[name] = value
    return out


def _health_flags(text: str) -> tuple[dict[str, int], str]:
    """The ``--name=value`` flags before HEALTHCHECK's type (Docker's BFlags: the ``=`` is
    required, an unknown or repeated flag is an error); the text after them."""
    out: dict[str, int] = {}
    while text.startswith("--"):
        word, _, text = text.partition(" ")
        text = text.lstrip()
        if word == "--":
            break
        name, sep, value = word[2:].partition("=")
        if name == "start-interval":
            raise InvalidArgument(
                "HEALTHCHECK --start-interval is not supported: Ferry's health checks have no "
                "start interval"
            )
        if name not in (*HEALTH_FLAGS, "retries"):
            raise InvalidArgument(f"HEALTHCHECK: unknown flag: {name}")
        if not sep:
            raise InvalidArgument(f"HEALTHCHECK: missing a value on flag: {name}")
        key = HEALTH_FLAGS.get(name, "Retries")
        if key in out:
            raise InvalidArgument(f"HEALTHCHECK: duplicate flag specified: {name}")
        out[key] = _retries(value) if name == "retries" else _nanoseconds(name, value)
    return out, text


def _retries(value: str) -> int:
    if not value.lstrip("-").isdigit() or abs(int(value)) >= 2**31:
        raise InvalidArgument(f"HEALTHCHECK: invalid --retries {value!r}: use a number")
    if int(value) < 0:
        raise InvalidArgument(f"--retries cannot be negative ({int(value)})")
    return int(value)


def _nanoseconds(name: str, value: str) -> int:
    seconds = parse_duration(value, f"HEALTHCHECK --{name}")
    if 0 < seconds < MIN_DURATION_S:
        raise InvalidArgument(f'Interval "{name}" cannot be less than 1ms')
    return round(seconds * NS)


def healthcheck(rest: str) -> dict[str, Any]:
    """``HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--retries=N] CMD …``
    or ``HEALTHCHECK NONE`` as Docker's ``HealthConfig`` (durations in ns; a flag not given
    is 0, "inherit the default", as Docker writes it). ``CMD ["a", "b"]`` is the exec form
    (``["CMD", "a", "b"]``), ``CMD a b`` the shell form (``["CMD-SHELL", "a b"]``)."""
    numbers, text = _health_flags(rest)
    kind, _, command = text.partition(" ")
    command = command.strip()
    if not kind:
        raise InvalidArgument("HEALTHCHECK requires at least one argument")
    if kind.upper() == "NONE":
        if command or numbers:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if kind.upper() != "CMD":
        raise InvalidArgument(f'Unknown type "{kind.upper()}" in HEALTHCHECK (try CMD)')
    form = _json_form(command)
    test = ["CMD", *form] if form is not None else ["CMD-SHELL", command]
    if not any(test[1:]):
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    return {"Test": test, **{k: numbers.get(k, 0) for k in (*HEALTH_FLAGS.values(), "Retries")}}


def onbuild(rest: str) -> str:
    """``ONBUILD INSTRUCTION …``: the trigger kept as written (Docker's ``Config.OnBuild``);
    ONBUILD, FROM and MAINTAINER cannot be triggers (Docker's words)."""
    trigger = rest.split(None, 1)[0].upper()
    if trigger == "ONBUILD":
        raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("FROM", "MAINTAINER"):
        raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
    return rest


def _apply(out: dict[str, Any], key: str, rest: str) -> None:
    if key in ("CMD", "ENTRYPOINT"):
        out["Cmd" if key == "CMD" else "Entrypoint"] = _command(rest)
    elif key == "ENV":
        env = {e.partition("=")[0]: e for e in out.get("Env") or []}
        env.update({k: f"{k}={v}" for k, v in _pairs(rest, key).items()})
        out["Env"] = list(env.values())
    elif key == "LABEL":
        out["Labels"] = {**(out.get("Labels") or {}), **_pairs(rest, key)}
    elif key == "EXPOSE":
        ports = dict(out.get("ExposedPorts") or {})
        for port in rest.split():
            number, _, proto = port.partition("/")
            if not number.isdigit() or proto not in ("", "tcp", "udp", "sctp"):
                raise InvalidArgument(f"invalid port {port!r} in EXPOSE: use PORT[/PROTO]")
            ports[f"{int(number)}/{proto or 'tcp'}"] = {}
        out["ExposedPorts"] = ports
    elif key == "VOLUME":
        paths = _json_list(rest) if rest.startswith("[") else rest.split()
        out["Volumes"] = {**(out.get("Volumes") or {}), **{p: {} for p in paths}}
    elif key == "HEALTHCHECK":
        out["Healthcheck"] = healthcheck(rest)
    elif key == "ONBUILD":
        out["OnBuild"] = [*(out.get("OnBuild") or []), onbuild(rest)]
    else:
        field = {"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[key]
        out[field] = rest


def apply_changes(
    changes: Sequence[str], config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The image ``Config`` after ``docker import -c``'s Dockerfile lines, in order (Docker's
    ``dockerfile.BuildFromConfig``). Raises ``InvalidArgument`` naming an instruction import
    cannot take (``RUN is not a valid change command``) or a malformed argument."""
    out: dict[str, Any] = dict(config or {})
    for change in changes:
        key, _, rest = change.strip().partition(" ")
        key, rest = key.upper(), rest.strip()
        if key not in CHANGE_KEYS:
            raise InvalidArgument(
                f"{key or change!r} is not a valid change command: use {', '.join(CHANGE_KEYS)}"
            )
        if not rest:
            raise InvalidArgument(f"{key} requires at least one argument")
        _apply(out, key, rest)
    return out
