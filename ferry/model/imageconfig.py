"""An image's run configuration (the OCI/Docker image config's ``config`` object) and its merge
with a container's run options, the way Docker merges them (pure).

Docker's rules, followed here field by field (moby ``daemon/commit.go`` ``merge`` and
``daemon/create.go`` ``mergeAndVerifyConfig``):

- ``Entrypoint``/``Cmd``: when the run gives no entrypoint, a run without a command takes the
  image's ``Cmd``, and the image's ``Entrypoint`` stays. An entrypoint given (``--entrypoint``)
  drops the image's ``Cmd`` too: only the run's command follows it. ``--entrypoint ""`` (the
  docker CLI sends ``[""]``) clears the image's entrypoint. Nothing to run at all is Docker's
  ``No command specified``.
- ``Env``: merged by key, the run's value winning; the run's entries first.
- ``WorkingDir``, ``User``, ``StopSignal``: the run's, else the image's.
- ``Healthcheck``: the image's, unless the run gives one; then each of its fields left at zero
  (``Test``, ``Interval``, ``Timeout``, ``Retries``, ``StartPeriod``) is the image's.
  ``--no-healthcheck`` is the test ``["NONE"]``, which wins as any given test does.
- ``Labels``: merged, the run's winning. ``ExposedPorts`` and ``Volumes``: the union.

Be aware: health options without a test where the image has no HEALTHCHECK either are
refused here (Docker keeps them as a check that never runs). The image config's other keys
(``Hostname``, ``Domainname``, ``Tty``, ``OnBuild``, ``Shell``, ``ArgsEscaped``, ``Image``…)
are build-time or legacy fields that Docker's merge does not use either; they are read past,
as Docker does. A relative ``WorkingDir`` in an image is refused by name.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import InvalidArgument
from ferry.model.container import PublishedPort
from ferry.model.ports import reserved
from ferry.model.runopts import Healthcheck

NS = 1_000_000_000
# Docker's ephemeral range for published ports without a host port (ip_local_port_range's
# default, which moby's portallocator reads): -P and -p PORT pick from it.
EPHEMERAL_PORTS = (32768, 60999)
_PORT_RE = re.compile(r"^([0-9]{1,5})(?:/(tcp|udp|sctp))?$")


@dataclass(frozen=True)
class HealthConfig:
    """Docker's ``HealthConfig`` as given (seconds, not nanoseconds): a zero field is "not
    set" (the image's, else Docker's default); an empty ``test`` likewise."""

    test: tuple[str, ...] = ()
    interval_s: float = 0.0
    timeout_s: float = 0.0
    retries: int = 0
    start_period_s: float = 0.0

    @classmethod
    def of(cls, check: Healthcheck) -> HealthConfig:
        """A complete health check (every field set) as a given HealthConfig."""
        return cls(check.test, check.interval_s, check.timeout_s, check.retries,
                   check.start_period_s)  # fmt: skip

    def over(self, image: HealthConfig) -> HealthConfig:
        """This one's fields, the image's where this one has none (Docker's per-field merge)."""
        return HealthConfig(
            self.test or image.test,
            self.interval_s or image.interval_s,
            self.timeout_s or image.timeout_s,
            self.retries or image.retries,
            self.start_period_s or image.start_period_s,
        )

    def resolved(self) -> Healthcheck | None:
        """The check that runs, Docker's defaults in the unset fields; None when there is no
        test. Raises ``InvalidArgument`` for a malformed test."""
        if not self.test:
            return None
        default = Healthcheck(("NONE",))
        check = Healthcheck(
            self.test,
            self.interval_s or default.interval_s,
            self.timeout_s or default.timeout_s,
            self.retries or default.retries,
            self.start_period_s,
        )
        check.check()
        return check


@dataclass(frozen=True)
class ImageConfig:
    """The fields of an image's config that a container's run takes (Docker's image-inspect
    ``Config``); ``exposed_ports`` as ``80/tcp``, ``volumes`` as absolute paths."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: HealthConfig | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    """What the run asked for, as Docker's create body carries it. ``entrypoint``: None when
    not given, ``()`` for an empty list, ``("",)`` for ``--entrypoint ""``."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: HealthConfig | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EffectiveConfig:
    """What runs: the merge of the run's config over the image's."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    working_dir: str
    user: str
    exposed_ports: tuple[str, ...]
    stop_signal: str
    healthcheck: Healthcheck | None
    labels: dict[str, str]
    volumes: tuple[str, ...]

    @property
    def argv(self) -> tuple[str, ...]:
        """Docker's ``Path`` followed by its ``Args``: the entrypoint, then the command."""
        return self.entrypoint + self.cmd


# parsing -------------------------------------------------------------------------------------
def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if isinstance(value, str):  # a legacy config may hold a single string
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"image config: {key} is not a list of strings")
    return tuple(value)


def _string(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"image config: {key} is not a string")
    return value


def _keys(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument(f"image config: {key} is not an object")
    return tuple(value)


def port_key(text: str, where: str) -> str:
    """``80``, ``80/tcp`` or ``53/udp`` as Docker's port key (``80/tcp``: tcp by default)."""
    match = _PORT_RE.match(text)
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise InvalidArgument(f"{where}: invalid port {text!r}: use PORT[/tcp|udp]")
    return f"{int(match.group(1))}/{match.group(2) or 'tcp'}"


def _health(raw: Mapping[str, Any]) -> HealthConfig | None:
    value = raw.get("Healthcheck")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgument("image config: Healthcheck is not an object")
    numbers = {}
    for key in ("Interval", "Timeout", "Retries", "StartPeriod"):
        number = value.get(key) or 0
        if not isinstance(number, int) or number < 0:
            raise InvalidArgument(f"image config: Healthcheck.{key} is not a positive number")
        numbers[key] = number
    return HealthConfig(
        _strings(value, "Test"),
        numbers["Interval"] / NS,
        numbers["Timeout"] / NS,
        numbers["Retries"],
        numbers["StartPeriod"] / NS,
    )


def parse_image_config(raw: Mapping[str, Any]) -> ImageConfig:
    """An image config's ``config`` object (``{}`` for an image without one). Raises
    ``InvalidArgument`` naming a field of the wrong shape."""
    labels = raw.get("Labels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise InvalidArgument("image config: Labels is not an object of strings")
    for pair in _strings(raw, "Env"):
        if "=" not in pair:
            raise InvalidArgument(f"image config: Env entry {pair!r} is not KEY=VALUE")
    working_dir = _string(raw, "WorkingDir")
    if working_dir and not working_dir.startswith("/"):
        raise InvalidArgument(f"image config: WorkingDir {working_dir!r} is not an absolute path")
    return ImageConfig(
        entrypoint=_strings(raw, "Entrypoint"),
        cmd=_strings(raw, "Cmd"),
        env=_strings(raw, "Env"),
        working_dir=working_dir,
        user=_string(raw, "User"),
        exposed_ports=tuple(
            port_key(p, "image config ExposedPorts") for p in _keys(raw, "ExposedPorts")
        ),
        stop_signal=_string(raw, "StopSignal"),
        healthcheck=_health(raw),
        labels=dict(labels),
        volumes=_keys(raw, "Volumes"),
    )


# merging -------------------------------------------------------------------------------------
def merge_env(run: tuple[str, ...], image: tuple[str, ...]) -> tuple[str, ...]:
    """The run's entries, then the image's whose key the run does not set (Docker's merge)."""
    keys = {pair.split("=", 1)[0] for pair in run}
    return run + tuple(pair for pair in image if pair.split("=", 1)[0] not in keys)


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(item for item in second if item not in first)


def _command(run: RunConfig, image: ImageConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(entrypoint, cmd) as moby's merge and mergeAndVerifyConfig leave them."""
    entrypoint, cmd = run.entrypoint, run.cmd
    if not entrypoint:  # None or []: the run sets no entrypoint of its own
        if not cmd:
            cmd = image.cmd
        if entrypoint is None:
            entrypoint = image.entrypoint
    if entrypoint == ("",):  # --entrypoint "": no entrypoint at all
        entrypoint = ()
    return tuple(entrypoint or ()), cmd


def merge(run: RunConfig, image: ImageConfig, image_name: str = "") -> EffectiveConfig:
    """The config a container runs with: ``run`` over ``image``, by Docker's rules (see the
    module's docstring). Raises ``InvalidArgument`` with Docker's ``No command specified``
    when neither gives anything to run, and for a health check without a test."""
    entrypoint, cmd = _command(run, image)
    if not entrypoint and not cmd:
        of = f" (the image {image_name} has no Cmd or Entrypoint)" if image_name else ""
        raise InvalidArgument(f"No command specified{of}: give the command to run after the image")
    health = run.healthcheck
    if image.healthcheck is not None:
        health = image.healthcheck if health is None else health.over(image.healthcheck)
    if health is not None and not health.test:
        raise InvalidArgument(
            "--health-* options need --health-cmd: the image has no HEALTHCHECK to complete"
        )
    return EffectiveConfig(
        entrypoint=entrypoint,
        cmd=cmd,
        env=merge_env(run.env, image.env),
        working_dir=run.working_dir or image.working_dir,
        user=run.user or image.user,
        exposed_ports=_union(run.exposed_ports, image.exposed_ports),
        stop_signal=run.stop_signal or image.stop_signal,
        healthcheck=health.resolved() if health is not None else None,
        labels={**image.labels, **run.labels},
        volumes=_union(run.volumes, image.volumes),
    )


def publish_all(
    exposed: tuple[str, ...],
    bound: set[str],
    taken: set[str],
    rng: random.Random,
    data_path_port: int,
) -> list[PublishedPort]:
    """``-P``: every exposed port (``80/tcp``) not bound already (``bound``, port keys) on a
    host port of Docker's ephemeral range that is not ``taken`` (``tcp/32768``, updated with
    the ports chosen) nor Ferry's own (with the VXLAN pair of ``data_path_port``). Raises
    ``InvalidArgument`` for a protocol Ferry cannot publish (sctp). Docker:
    HostConfig.PublishAllPorts."""
    out = []
    for key in exposed:
        if key in bound:
            continue
        number, _, proto = key.partition("/")
        if proto not in ("tcp", "udp"):
            raise InvalidArgument(f"cannot publish {key}: Ferry publishes tcp and udp ports")
        host_port = ephemeral_port(proto, taken, rng, data_path_port)
        out.append(PublishedPort(host_port, int(number), proto))
    return out


def ephemeral_port(proto: str, taken: set[str], rng: random.Random, data_path_port: int) -> int:
    """A free host port of Docker's ephemeral range, tried from a random start, never one of
    Ferry's own (51820/udp lies in the range, and so may the swarm's VXLAN pair of
    ``data_path_port``), and recorded in ``taken`` (``tcp/32768``
    keys). Raises ``InvalidArgument`` when every one is taken."""
    low, high = EPHEMERAL_PORTS
    start = rng.randint(low, high)
    for offset in range(high - low + 1):
        port = low + (start - low + offset) % (high - low + 1)
        if f"{proto}/{port}" not in taken and reserved(proto, port, data_path_port) is None:
            taken.add(f"{proto}/{port}")
            return port
    raise InvalidArgument(f"no free {proto} host port left in {low}-{high} to publish on")
