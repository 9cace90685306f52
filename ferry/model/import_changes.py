"""The Dockerfile lines ``docker import -c`` (and ``commit -c``) takes, applied to an image's
``Config`` (pure data, no I/O).

Docker's daemon reads them with its Dockerfile parser and accepts only the instructions that
describe a config (``builder/dockerfile``'s ``validCommitCommands``): CMD, ENTRYPOINT, ENV,
EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. Anything else (RUN,
COPY, FROM…) is refused in one line that names it, as Docker refuses it.

Each argument is checked as Docker's dispatchers check it, in Docker's words: EXPOSE's ports
(go-connections ``nat.ParsePortSpecs``: "invalid containerPort: 99999", "invalid proto: foo";
a range ``8000-8010`` exposes each port), STOPSIGNAL's signal (moby/sys ``signal.ParseSignal``:
"invalid signal: SIGFOO"), VOLUME's paths ("VOLUME specified can not be an empty string").
``WORKDIR relative/path`` is taken as Docker takes it (``normalizeWorkdir``): joined onto the
working directory so far, or ``/``. The config that results must be one Ferry can run
(``imageconfig.parse_image_config``), so nothing is stored that a ``docker run`` would refuse.

Be aware: ``HEALTHCHECK --start-interval`` is refused by name: Ferry's health checks have no
start interval (``docker run --health-start-interval`` is refused the same way). Line
continuations and parser directives of a Dockerfile do not apply: each ``-c`` is one line.
Ferry refuses what Docker takes but Ferry would store wrong or could not run: a ``$variable``
in an instruction Docker expands (Ferry does not expand them), EXPOSE with a host part
(``8080:80``: an image cannot publish), STOPSIGNAL ``RTMIN+N`` (Ferry stops containers with a
signal of ``signal(7)``'s names or numbers), a relative VOLUME path, a USER that is not
``NAME|UID[:GROUP|GID]``.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from ferry.errors import InvalidArgument
from ferry.model.imageconfig import parse_image_config
from ferry.model.runopts import check_user, parse_duration

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
# the instructions Docker's dispatchers run through shell word expansion (ENV substitution)
EXPANDED = ("ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")
PROTOCOLS = ("tcp", "udp", "sctp")
_PORT_RANGE = re.compile(r"^([0-9]+)(?:-([0-9]+))?$")
_REALTIME = re.compile(r"^(SIG)?RTM(IN|AX)[+-][0-9]+$")


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
    try:
        words = shlex.split(rest)
    except ValueError as exc:  # an unclosed quote
        raise InvalidArgument(f"{key} {rest}: {exc}") from exc
    if words and "=" not in words[0]:
        if len(words) < 2:  # Docker's parseNameVal, for ENV and LABEL alike
            raise InvalidArgument(f"{key} must have two arguments")
        name, _, value = rest.partition(" ")
        return {name: value.strip()}
    out = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep:
            raise InvalidArgument(
                f"Syntax error - can't find = in {word!r}. Must be of the form: name=value"
            )
        if not name:
            raise InvalidArgument(f"{key} names can not be blank")
        out[name] = value
    return out


def exposed_ports(rest: str) -> list[str]:
    """EXPOSE's ``PORT[/PROTO]`` or ``FIRST-LAST[/PROTO]`` words as Docker's port keys
    (``80/tcp``), as go-connections ``nat.ParsePortSpecs`` reads them: tcp by default, the
    protocol case-insensitive, a range one key per port. A port outside 1-65535 or another
    protocol is refused in Docker's words; a host part (``8080:80``) by name."""
    out = []
    for word in rest.split():
        port, _, proto = word.partition("/")
        proto = proto.lower() or "tcp"
        if ":" in port:
            raise InvalidArgument(
                f"EXPOSE {word}: an image exposes container ports only; publish a host port "
                "with docker run -p"
            )
        match = _PORT_RANGE.match(port)
        first, last = (
            (int(match.group(1)), int(match.group(2) or match.group(1))) if match else (0, 0)
        )
        if not 1 <= first <= last <= 65535:
            raise InvalidArgument(f"invalid containerPort: {port}")
        if proto not in PROTOCOLS:
            raise InvalidArgument(f"invalid proto: {word.partition('/')[2]}")
        out += [f"{number}/{proto}" for number in range(first, last + 1)]
    return out


def stop_signal(rest: str) -> str:
    """STOPSIGNAL's signal, kept as written (Docker's ``Config.StopSignal``): a number from 1
    to the last signal, or a name of ``signal(7)`` with or without ``SIG``, any case — what
    Ferry's stop sends. Raises ``InvalidArgument`` ("invalid signal: X", moby/sys/signal)."""
    value = rest.strip()
    if _REALTIME.match(value.upper()):
        raise InvalidArgument(
            f"STOPSIGNAL {value} is not supported: Ferry stops a container with a signal "
            "named in signal(7) or by its number"
        )
    if value.isdigit():
        valid = 0 < int(value) < signal.NSIG
    else:
        valid = f"SIG{value.upper().removeprefix('SIG')}" in signal.Signals.__members__
    if not valid:
        raise InvalidArgument(f"invalid signal: {value}")
    return value


def workdir(current: str, requested: str) -> str:
    """Docker's ``normalizeWorkdir``: an absolute path as written; a relative one joined onto
    the working directory so far (``/`` when none) and cleaned."""
    if requested.startswith("/"):
        return requested
    return posixpath.normpath(posixpath.join("/", current or "/", requested))


def volumes(rest: str) -> list[str]:
    """VOLUME's paths (JSON list or words). Docker refuses an empty one at import and a
    relative one when a container is made of the image; both are refused here."""
    paths = _json_list(rest) if rest.startswith("[") else rest.split()
    for path in paths:
        if not path.strip():
            raise InvalidArgument("VOLUME specified can not be an empty string")
        if not path.startswith("/"):
            raise InvalidArgument(
                f"VOLUME {path}: invalid mount config: mount path must be absolute"
            )
    return paths


def user(rest: str) -> str:
    try:
        return check_user(rest)
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid USER {rest!r}: use NAME|UID[:GROUP|GID]") from exc


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
        ports: dict[str, Any] = {p: {} for p in exposed_ports(rest)}
        out["ExposedPorts"] = {**(out.get("ExposedPorts") or {}), **ports}
    elif key == "VOLUME":
        out["Volumes"] = {**(out.get("Volumes") or {}), **{p: {} for p in volumes(rest)}}
    elif key == "HEALTHCHECK":
        out["Healthcheck"] = healthcheck(rest)
    elif key == "ONBUILD":
        out["OnBuild"] = [*(out.get("OnBuild") or []), onbuild(rest)]
    elif key == "STOPSIGNAL":
        out["StopSignal"] = stop_signal(rest)
    elif key == "USER":
        out["User"] = user(rest)
    else:
        out["WorkingDir"] = workdir(str(out.get("WorkingDir") or ""), rest)


def apply_changes(
    changes: Sequence[str], config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The image ``Config`` after ``docker import -c``'s Dockerfile lines, in order (Docker's
    ``dockerfile.BuildFromConfig``). Raises ``InvalidArgument`` naming an instruction import
    cannot take (``RUN is not a valid change command``), a malformed argument, or a result
    Ferry could not run (``parse_image_config``)."""
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
        if key in EXPANDED and "$" in rest:
            raise InvalidArgument(
                f"{key} {rest}: Ferry does not expand variables in import changes "
                "(Docker substitutes the image's ENV): write the value out"
            )
        _apply(out, key, rest)
    if changes:
        parse_image_config(out)  # what a docker run of the image would refuse, refused now
    return out
