"""Registry credentials: Docker's ``X-Registry-Auth`` header, ferryd's auth file, ``login``.

``login`` checks the credentials with the registry (``skopeo login``) and keeps them in
ferryd's auth file (mode 0600, containers-auth.json(5): Docker's config.json ``auths``
shape), which every later pull and push of that registry uses. A request's own
``X-Registry-Auth`` (the docker CLI's, or a manager's with ``--with-registry-auth``) is
written to a private file of its own for that one call, never to ferryd's.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry import jsontext
from ferry.errors import InvalidArgument, NotFound
from ferry.model.reference import DEFAULT_DOMAIN
from ferry.runtime.skopeo import INSPECT_TIMEOUT_S, Skopeo

HUB_ADDRESSES = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")


REGISTRY_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
# Docker's AuthConfig: every field a string (api/types/registry/authconfig.go)
AUTH_FIELDS = (
    "username",
    "password",
    "auth",
    "email",
    "serveraddress",
    "identitytoken",
    "registrytoken",
)
_JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", list: "an array",
               dict: "an object"}  # fmt: skip


def check_auth_fields(doc: dict[str, Any], what: str) -> None:
    """Each of Docker's ``AuthConfig`` fields ``doc`` has is a string (``null`` counts as
    absent, as Go's decoder takes it). Raises ``InvalidArgument`` naming the field, where
    Docker answers ``json: cannot unmarshal number into Go struct field
    AuthConfig.username of type string``."""
    for key in AUTH_FIELDS:
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            kind = _JSON_TYPES.get(type(value), type(value).__name__)
            raise InvalidArgument(f"invalid {what}: {key} must be a string, not {kind}")


@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: str
    serveraddress: str = ""

    @staticmethod
    def from_header(value: str) -> RegistryAuth | None:
        """Docker's ``X-Registry-Auth``: base64url JSON (``username``, ``password``,
        ``serveraddress``; an ``identitytoken`` is refused by name). Empty → None."""
        if not value.strip():
            return None
        padded = value.strip() + "=" * (-len(value.strip()) % 4)
        try:
            text = base64.urlsafe_b64decode(padded)
        except (ValueError, binascii.Error) as exc:
            raise InvalidArgument("X-Registry-Auth is not base64url-encoded JSON") from exc
        try:
            doc = jsontext.loads(text, "X-Registry-Auth")
        except InvalidArgument as exc:
            raise InvalidArgument(f"X-Registry-Auth is not base64url-encoded JSON ({exc})") from exc
        if not isinstance(doc, dict):
            raise InvalidArgument("X-Registry-Auth is not a JSON object")
        check_auth_fields(doc, "X-Registry-Auth header")
        if doc.get("identitytoken") or doc.get("registrytoken"):
            raise InvalidArgument("identity tokens are not supported: log in with a password")
        if not doc.get("username") and not doc.get("password"):
            return None  # the docker CLI sends "{}" when it has no credentials
        return RegistryAuth(
            str(doc.get("username", "")),
            str(doc.get("password", "")),
            str(doc.get("serveraddress", "")),
        )


def server_domain(address: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://h:5000/`` → ``h:5000``."""
    if not address or address in HUB_ADDRESSES:
        return DEFAULT_DOMAIN
    host = address.split("://", 1)[-1].split("/", 1)[0]
    if host in HUB_ADDRESSES:
        return DEFAULT_DOMAIN
    # a host[:port] only: the name reaches skopeo's command line, where "-v" would be an option
    if not REGISTRY_HOST_RE.match(host):
        raise InvalidArgument(f"invalid registry address {address!r}: use HOST[:PORT]")
    return host


class Credentials:
    def __init__(self, skopeo: Skopeo, authfile: Path) -> None:
        self.skopeo = skopeo
        self.authfile = authfile

    @contextlib.asynccontextmanager
    async def args(self, prefix: str, auth: RegistryAuth | None) -> AsyncIterator[list[str]]:
        """``--{prefix}authfile``: the request's own credentials in a private file for this
        call, else ferryd's file (if there is one)."""
        if auth is None:
            yield [f"--{prefix}authfile={self.authfile}"] if self.authfile.exists() else []
            return
        work = self.skopeo.work_dir / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=".auth-", suffix=".json", dir=work)
        try:
            token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
            domain = server_domain(auth.serveraddress)
            os.write(fd, json.dumps({"auths": {domain: {"auth": token}}}).encode())
            os.close(fd)
            yield [f"--{prefix}authfile={path}"]
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    async def login(self, username: str, password: str, serveraddress: str) -> None:
        """Check the credentials with the registry, then keep them (0600). Raises
        ``Forbidden`` for wrong credentials, ``Unavailable`` for an unreachable registry."""
        domain = server_domain(serveraddress)
        self.authfile.parent.mkdir(parents=True, exist_ok=True)
        if not self.authfile.exists():
            fd = os.open(self.authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b'{"auths": {}}')
            os.close(fd)
        await self.skopeo.run(
            [
                "login",
                f"--authfile={self.authfile}",
                "--username",
                username,
                "--password-stdin",
                *self.skopeo.tls_flag("", domain),
                domain,
            ],
            domain,
            timeout_s=INSPECT_TIMEOUT_S,
            stdin=password.encode(),
        )
        os.chmod(self.authfile, 0o600)

    async def logout(self, serveraddress: str) -> None:
        domain = server_domain(serveraddress)
        if not self.authfile.exists():
            raise NotFound(f"Not logged in to {domain}")
        auths = json.loads(self.authfile.read_text() or "{}").get("auths", {})
        if domain not in auths:
            raise NotFound(f"Not logged in to {domain}")
        await self.skopeo.run(
            ["logout", f"--authfile={self.authfile}", domain], domain, timeout_s=INSPECT_TIMEOUT_S
        )
