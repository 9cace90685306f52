"""``--with-registry-auth``: the client's credentials for an image's registry, as the docker CLI
sends them (the ``X-Registry-Auth`` header: base64url JSON of ``username``, ``password`` and
``serveraddress``), read from the docker client's own file, ``$DOCKER_CONFIG/config.json``
(default ``~/.docker/config.json``), where ``docker login`` keeps them.

Be aware: credential helpers (``credsStore``, ``credHelpers``) are not run: a registry whose
credentials live only in one is refused by name, as is a registry with no credentials at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from ferry.errors import InvalidArgument

DOCKER_HUB = "https://index.docker.io/v1/"  # the key `docker login` keeps Docker Hub under


def registry_of(image: str) -> str:
    """The registry of an image reference by Docker's rule: its first component when that
    has a '.' or ':' or is ``localhost``; Docker Hub otherwise."""
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return "docker.io" if first in ("docker.io", "index.docker.io") else first
    return "docker.io"


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def _entry(auths: dict[str, Any], registry: str) -> dict[str, Any] | None:
    names = (
        (DOCKER_HUB, "index.docker.io", "docker.io")
        if registry == "docker.io"
        else (registry, f"https://{registry}", f"http://{registry}")
    )
    for name in names:
        found = auths.get(name)
        if isinstance(found, dict):
            return found
    return None


def _credentials(entry: dict[str, Any], registry: str) -> tuple[str, str]:
    if entry.get("username") or entry.get("password"):
        return str(entry.get("username", "")), str(entry.get("password", ""))
    try:
        user, sep, password = base64.b64decode(str(entry.get("auth", ""))).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"the credentials kept for {registry} do not decode") from exc
    return (user, password) if sep else ("", "")


def registry_auth_header(image: str, path: Path | None = None) -> str:
    """``X-Registry-Auth`` for ``image``'s registry from the docker client's config file.
    Raises ``InvalidArgument`` naming the registry and the file when it holds none."""
    path = path or config_path()
    registry = registry_of(image)
    fix = f"log in first ('docker login {'' if registry == 'docker.io' else registry}')"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InvalidArgument(f"--with-registry-auth: no {path}: {fix}") from exc
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"--with-registry-auth: cannot read {path}: {exc}") from exc
    entry = _entry(doc.get("auths") or {}, registry) if isinstance(doc, dict) else None
    user, password = _credentials(entry, registry) if entry is not None else ("", "")
    if not user and not password:
        helper = isinstance(doc, dict) and (doc.get("credsStore") or doc.get("credHelpers"))
        why = "they are in a credential helper, which Ferry does not run" if helper else fix
        raise InvalidArgument(
            f"--with-registry-auth: no credentials for {registry} in {path}: {why}"
        )
    server = DOCKER_HUB if registry == "docker.io" else registry
    body = json.dumps({"username": user, "password": password, "serveraddress": server})
    return base64.urlsafe_b64encode(body.encode()).decode()
