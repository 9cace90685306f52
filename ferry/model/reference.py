"""Image references, Docker's way (distribution/reference, ``ParseNormalizedNamed``).

``nginx`` is ``docker.io/library/nginx:latest``; ``me/app`` is ``docker.io/me/app:latest``;
the first component is a registry when it has a ``.`` or a ``:`` or is ``localhost``
(``localhost:5000/app``, ``10.30.0.250:5000/library/alpine``); ``index.docker.io`` is
``docker.io``. A reference may carry a tag, a digest (``name@sha256:<64 hex>``) or both; with
neither it means ``:latest``. The *familiar* form drops ``docker.io/`` and ``library/`` again,
as the docker CLI prints names (``nginx:latest``).

Pure data, no I/O: the manager (``service create``) and the runtime both use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ferry.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255  # Docker's limit on a repository name, domain included

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_HEX_ID_RE = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")


@dataclass(frozen=True)
class Reference:
    domain: str  # "docker.io", "localhost:5000"
    path: str  # "library/nginx"
    tag: str = ""  # "" when only a digest was given
    digest: str = ""  # "sha256:…" or ""

    @property
    def repository(self) -> str:
        """``docker.io/library/nginx``: the name a registry is asked for, with its domain."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """``nginx``, ``me/app``, ``localhost:5000/app``: as the docker CLI prints it."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix(OFFICIAL_PREFIX)

    @property
    def full(self) -> str:
        """``docker.io/library/nginx:latest`` (``@digest`` appended when there is one)."""
        return self.repository + _suffix(self.tag, self.digest)

    @property
    def familiar(self) -> str:
        """``nginx:latest``, ``nginx@sha256:…``: the name images are listed under."""
        return self.familiar_repository + _suffix(self.tag, self.digest)

    @property
    def remote(self) -> str:
        """What a registry is asked for: the digest when there is one (a registry cannot take
        both, and the digest is the stronger), else the tag."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, "")


def _suffix(tag: str, digest: str) -> str:
    return (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _invalid(ref: str, why: str = "") -> InvalidArgument:
    detail = f": {why}" if why else ""
    return InvalidArgument(f"invalid reference format{detail} ({ref!r})")


def parse_reference(ref: str, *, default_tag: bool = True) -> Reference:
    """Docker's normalisation of ``ref``; ``default_tag`` adds ``:latest`` when neither a tag
    nor a digest is given (as ``docker pull`` does). Raises ``InvalidArgument`` with Docker's
    words ("invalid reference format", "repository name must be lowercase")."""
    if not ref or ref != ref.strip():
        raise _invalid(ref)
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise _invalid(ref, "a digest is sha256: and 64 lower-case hex digits")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG_RE.match(tag):
            raise _invalid(ref, "a tag is at most 128 letters, digits, '_', '.', '-'")
    domain, path = _split_domain(name)
    if path != path.lower() and _PATH_RE.match(path.lower()):
        raise _invalid(ref, "repository name must be lowercase")
    if not _PATH_RE.match(path) or not _DOMAIN_RE.match(domain):
        raise _invalid(ref)
    if len(f"{domain}/{path}") > NAME_MAX:
        raise _invalid(ref, f"repository name must not be more than {NAME_MAX} characters")
    if default_tag and not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's ``splitDockerDomain``: the first component is a registry when it has a ``.``
    or a ``:``, is ``localhost``, or has upper-case letters (a path may not)."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def normalise(ref: str) -> str:
    """The familiar name images are kept under: ``nginx`` → ``nginx:latest``,
    ``docker.io/library/nginx`` → ``nginx:latest``, ``localhost:5000/app`` →
    ``localhost:5000/app:latest``. Raises ``InvalidArgument`` for an invalid reference."""
    return parse_reference(ref).familiar


def image_id_prefix(ref: str) -> str | None:
    """The hex of ``ref`` when it can be (a prefix of) an image id (``sha256:abc…`` or
    ``abc…``), else None. Docker tries a reference as a name first, then as an id."""
    found = _HEX_ID_RE.match(ref)
    return found.group(1) if found else None


def path_pattern(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match`` pattern, compiled (Docker's ``reference`` filter matches with it):
    ``*`` any run of characters but ``/``, ``?`` one character but ``/``, ``[…]`` a class
    (``^`` negates, ``a-z`` ranges), ``\\`` escapes. The whole pattern is checked, as Go does;
    raises ``InvalidArgument("… syntax error in pattern")`` for a malformed one."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            i, part = _char_class(pattern, i + 1)
            out.append(part)
            continue
        elif char == "\\":
            if i + 1 == len(pattern):
                raise _bad_pattern(pattern)
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _bad_pattern(pattern: str) -> InvalidArgument:
    return InvalidArgument(f"invalid reference filter {pattern!r}: syntax error in pattern")


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    """One character of a class (Go's ``getEsc``): ``-`` and ``]`` must be escaped, and the
    class must be closed."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise _bad_pattern(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise _bad_pattern(pattern)
    return pattern[i], i + 1


def _char_class(pattern: str, i: int) -> tuple[int, str]:
    """The class starting after ``[`` at ``i``: where it ends, and its regular expression."""
    negated = pattern[i : i + 1] == "^"
    i += negated
    parts: list[str] = []
    count = 0
    while not (pattern[i : i + 1] == "]" and count):
        low, i = _class_char(pattern, i)
        high = low
        if pattern[i : i + 1] == "-":
            high, i = _class_char(pattern, i + 1)
        if low <= high:  # Go takes an inverted range and matches nothing with it
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
        count += 1
    if not parts:
        return i + 1, "." if negated else "(?!)"
    return i + 1, f"[{'^' if negated else ''}{''.join(parts)}]"


def familiar_match(pattern: re.Pattern[str], ref: str) -> bool:
    """Docker's ``reference.FamiliarMatch``: the pattern against the familiar reference
    (``nginx:latest``, ``nginx@sha256:…``), else against its repository (``nginx``)."""
    if pattern.fullmatch(ref):
        return True
    name = ref.partition("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rpartition(":")[0]
    return pattern.fullmatch(name) is not None
