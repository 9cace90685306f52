"""What names and values a container or a service may be given, checked before anything is
stored: the one place these rules live, for the API's routes and the managers alike.

Each check raises ``InvalidArgument`` with one line that names the value and the rule, in
Docker's words where Docker has them:

- container names: moby ``daemon/names`` (``[a-zA-Z0-9][a-zA-Z0-9_.-]+``, a leading ``/``
  allowed): "Invalid container name (x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"; Ferry
  also caps them at 253 characters, since they are DNS names here (RFC 1035 §2.3.4).
- hostnames: at most 64 bytes, Linux's HOST_NAME_MAX (moby rejects longer ones up front:
  'hostname "…" is too long (maximum 64 bytes)'); Ferry also holds them to RFC 1123 (letters,
  digits and '-', labels of at most 63 that neither start nor end with '-'), because a hostname
  is written into /etc/hosts and answered in DNS: a space or a newline there would add entries.
- network aliases: DNS names (labels of at most 63 of ``[a-zA-Z0-9_-]``, at most 253 in all);
  Docker does not check them, Ferry writes them into DNS answers.
- environment entries: moby ``opts.ValidateEnv``: the name before '=' must not be empty
  ('invalid environment variable: "=x"').
- working directories: moby ``translateWorkingDir``: absolute ("the working directory 'x' is
  invalid, it needs to be an absolute path").
- label keys: not empty (moby's CLI refuses "=x" as a label).
- a container's DNS names must not be a service's, on any network (Ferry's decision; Forbidden).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from ferry.errors import Forbidden, InvalidArgument
from ferry.model.service import Service

CONTAINER_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_CONTAINER_NAME = re.compile(f"^/?{CONTAINER_NAME_CHARS}+$")
DNS_NAME_MAX = 253
DNS_LABEL_MAX = 63
HOST_NAME_MAX = 64  # bytes, without the terminating NUL (Linux)
_HOSTNAME_LABEL = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
_ALIAS_LABEL = re.compile(r"^[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?$")


def quoted(text: str) -> str:
    """``text`` as Go's %q shows it: quoted, control characters escaped (one line)."""
    return json.dumps(text, ensure_ascii=False)


def check_container_name(name: str) -> str:
    """The name without Docker's optional leading '/'."""
    if not _CONTAINER_NAME.match(name):
        raise InvalidArgument(
            f"Invalid container name ({quoted(name)[1:-1]}), only {CONTAINER_NAME_CHARS} are "
            "allowed"
        )
    bare = name.removeprefix("/")
    if len(bare) > DNS_NAME_MAX:
        raise InvalidArgument(
            f"invalid container name {bare[:20]}…: {len(bare)} characters, at most "
            f"{DNS_NAME_MAX} (container names are DNS names)"
        )
    return bare


def check_hostname(hostname: str) -> None:
    if not hostname:
        return
    if len(hostname.encode()) > HOST_NAME_MAX:
        raise InvalidArgument(
            f"hostname {quoted(hostname[:20] + '…')} is too long (maximum {HOST_NAME_MAX} bytes)"
        )
    for label in hostname.split("."):
        if len(label) > DNS_LABEL_MAX or not _HOSTNAME_LABEL.match(label):
            raise InvalidArgument(
                f"invalid hostname {hostname!r}: use letters, digits and '-' in dot-separated "
                "labels that neither start nor end with '-' (RFC 1123)"
            )


def check_aliases(aliases: Iterable[str]) -> None:
    for alias in aliases:
        labels = alias.split(".")
        if len(alias) > DNS_NAME_MAX or not all(
            len(label) <= DNS_LABEL_MAX and _ALIAS_LABEL.match(label) for label in labels
        ):
            raise InvalidArgument(
                f"invalid network alias {alias[:70]!r}: a DNS name (letters, digits, '_' and "
                f"'-' in dot-separated labels of at most {DNS_LABEL_MAX}, at most "
                f"{DNS_NAME_MAX} in all)"
            )


def parse_env(pairs: Iterable[str]) -> tuple[str, ...]:
    """``KEY=VALUE`` entries; a bare ``KEY`` becomes ``KEY=`` (an empty value)."""
    out = []
    for pair in pairs:
        key, sep, _value = pair.partition("=")
        if not key.strip():
            raise InvalidArgument(f"invalid environment variable: {quoted(pair)}")
        if not sep and not key.isidentifier():
            raise InvalidArgument(f"invalid environment variable: {quoted(pair)}: use KEY=VALUE")
        out.append(pair if sep else f"{key}=")
    return tuple(out)


def check_working_dir(path: str) -> None:
    if path and not path.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{quoted(path)[1:-1]}' is invalid, it needs to be an "
            "absolute path"
        )


def check_labels(labels: Mapping[str, str] | None) -> None:
    for key in labels or {}:
        if not key.strip():
            raise InvalidArgument("invalid label: a label's key cannot be empty (use KEY=VALUE)")


def dns_keys(labels: Iterable[str], net_name: str) -> set[str]:
    """The names the embedded DNS answers for these labels on a network (see agent/names.py):
    each label, lower-cased, alone and qualified with the network's name."""
    keys = set()
    for label in labels:
        if label:
            keys |= {label.lower(), f"{label.lower()}.{net_name.lower()}"}
    return keys


def _all_aliases(svc: Service) -> tuple[str, ...]:
    """A service's aliases on any network: held wherever it is, as its name is."""
    return tuple(alias for named in svc.spec.aliases.values() for alias in named)


def check_no_service_name(
    labels: Iterable[str], net_name: str, services: Iterable[Service]
) -> None:
    """A container's name, aliases and hostname are DNS names on each network it is on
    (``net_name``), local ones included: none may be a service's name, one of its aliases or
    ``tasks.<service>``,
    whatever networks the service is on, as a container on both would answer next to the
    service's VIP and take part of its traffic (service and container names share one DNS
    namespace; ``service create`` enforces the other way round). Raises Forbidden, the
    managers' answer to such an endpoint (``manager/admission.py``). Docker does not check
    this; Ferry decides to, see the README's Security model."""
    wanted = dns_keys(labels, net_name)
    for svc in services:
        held = (svc.spec.name, f"tasks.{svc.spec.name}", *_all_aliases(svc))
        taken = dns_keys(held, net_name) & wanted
        if taken:
            raise Forbidden(
                f"name {min(taken)} belongs to service {svc.spec.name}: service and container "
                "names share the DNS namespace; choose another name or alias"
            )
