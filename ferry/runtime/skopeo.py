"""skopeo as Ferry's registry transport: how it is run, configured, and what its errors mean.

skopeo (Debian's, containers/image underneath) speaks the registry protocol: token auth,
manifest lists, Docker schema 2 and OCI manifests, gzip and zstd blobs. Ferry runs it as an
asyncio subprocess with a deadline (``--command-timeout`` and a kill past it), always with
fully qualified references, ``--insecure-policy`` (no signature policy: Docker has none), its
HOME and runtime directory under Ferry's (so no user's credentials are read) and an auth file
of Ferry's (containers-auth.json(5), the shape of Docker's config.json). ferryd's
``insecure-registries`` become ``--tls-verify=false`` per call; ``registry-mirrors`` are tried
by ``runtime.registry`` itself, in Docker's order.

Be aware: skopeo 1.9 reads the machine's /etc/containers/registries.conf and has no option or
variable to point it elsewhere; Debian's default holds only short-name aliases, which fully
qualified references never use. ``classify`` is pure (unit-tested); ``Skopeo.run`` is the
only process call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ferry.errors import Forbidden, InvalidArgument, NotFound, Unavailable

log = logging.getLogger("ferry.runtime.skopeo")
SKOPEO = "skopeo"
TIMEOUT_S = 600.0  # one pull or push, all layers; a registry that stalls is given up
INSPECT_TIMEOUT_S = 30.0

_NOT_FOUND = (
    "manifest unknown",
    "name unknown",
    "not found",
    "requested access to the resource is denied",
    "repository name not known",
    "does not exist",
)
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "dial tcp",
    "tls: ",
    "http response to https client",
    "context deadline exceeded",
    "timed out",
    "connection reset",
)
_DENIED = ("unauthorized", "authentication required", "invalid username/password")


@dataclass(frozen=True)
class RegistrySettings:
    """ferryd's ``registry-mirrors`` (URLs) and ``insecure-registries`` (``host[:port]`` or
    CIDR), Docker's daemon.json keys."""

    mirrors: tuple[str, ...] = ()
    insecure: tuple[str, ...] = ()

    def is_insecure(self, domain: str) -> bool:
        """Docker's rule: listed, an ``http://`` mirror, or on a loopback address
        (127.0.0.0/8, ``localhost``)."""
        host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
        if host == "localhost" or domain in self.insecure or host in self.insecure:
            return True
        if any(m.startswith("http://") and check_mirror(m) == domain for m in self.mirrors):
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if address.is_loopback:
            return True
        for entry in self.insecure:
            if "/" in entry and address in ipaddress.ip_network(entry, strict=False):
                return True
        return False


def check_mirror(url: str) -> str:
    """A mirror as Docker takes it (``http://10.30.0.250:5000``); returns ``host:port``.
    Raises ``InvalidArgument`` with Docker's words for a path or a scheme it refuses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"invalid mirror: unsupported scheme or no host in {url!r}")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise InvalidArgument(f"invalid mirror: path, query, or fragment at end of the URI {url!r}")
    return parts.netloc


def check_insecure(entry: str) -> str:
    if "/" in entry:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise InvalidArgument(f"invalid insecure registry {entry!r}: {exc}") from exc
        return entry
    if "://" in entry or not entry or " " in entry:
        raise InvalidArgument(
            f"insecure registry {entry!r} should not contain '://': use HOST[:PORT]"
        )
    return entry


def classify(stderr: str, ref: str) -> Exception:
    """What a failed skopeo call means, as Ferry's error kinds. A mirror that lacks the image
    and an unreachable Docker Hub behind it is "No such image" (the image is nowhere Ferry
    can look), as the lab (no Internet) needs."""
    text = stderr.lower()
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    if any(word in text for word in _NOT_FOUND):
        return NotFound(f"No such image: {ref}")
    if any(word in text for word in _DENIED):
        return Forbidden(f"pull access denied for {ref}: log in with 'ferry login' ({last})")
    if any(word in text for word in _UNREACHABLE):
        return Unavailable(f"cannot reach the registry for {ref}: {last}")
    return InvalidArgument(f"registry refused {ref}: {last}")


@dataclass
class Skopeo:
    """Runs skopeo with Ferry's configuration, files under ``work_dir``."""

    work_dir: Path
    settings: RegistrySettings = field(default_factory=RegistrySettings)
    binary: str = field(default_factory=lambda: shutil.which(SKOPEO) or f"/usr/bin/{SKOPEO}")

    def tls_flag(self, prefix: str, domain: str) -> list[str]:
        return [f"--{prefix}tls-verify=false"] if self.settings.is_insecure(domain) else []

    async def run(
        self,
        args: Sequence[str],
        ref: str,
        *,
        timeout_s: float = TIMEOUT_S,
        stdin: bytes | None = None,
    ) -> bytes:
        """Run ``skopeo ARGS`` and return its standard output; raises what ``classify``
        says on failure, ``Unavailable`` past ``timeout_s``."""
        tmp = self.work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary,
            "--insecure-policy",
            f"--command-timeout={int(timeout_s)}s",
            "--override-os=linux",
            "--override-arch=amd64",
            f"--tmpdir={tmp}",
            *args,
        ]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.work_dir),
            "XDG_RUNTIME_DIR": str(tmp),
            "TMPDIR": str(tmp),
        }
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), timeout_s + 5)
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise Unavailable(
                f"the registry did not answer for {ref} in {timeout_s:.0f} s"
            ) from exc
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            message = err.decode(errors="replace")
            log.info(
                "skopeo failed", extra={"ref": ref, "argv": args[:1], "stderr": message[-2000:]}
            )
            raise classify(message, ref)
        return out
