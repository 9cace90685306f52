"""A service's image pinned to a digest, as Docker pins it: ``service create`` (and ``service
update --image``) ask the registry for the manifest digest of the tag and keep
``name:tag@sha256:…`` in the spec, so every node runs the same bytes even if the tag moves.

Rules (moby daemon/cluster/services.go and the docker CLI's service create/update):
- a reference that carries a digest already is kept as it is (the docker CLI resolves on its
  own side, through ``/distribution/{name}/json``, and sends the pinned reference);
- a registry that cannot be reached, or has no such tag, is not an error: the spec keeps the
  tag and the answer carries Docker's warning that nodes may run different versions;
- ``--no-resolve-image`` asks for no resolution at all.

Be aware: the resolver is the image store's (``resolve_digest(ref, auth)``), handed in so the
manager's logic is tested without a registry.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from ferry.errors import InvalidArgument
from ferry.runtime.images import RegistryAuth, normalise

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
DigestResolver = Callable[[str, RegistryAuth | None], Awaitable[str | None]]


def split_digest(ref: str) -> tuple[str, str]:
    """``name[:tag][@sha256:…]`` → (normalised ``name:tag``, digest or ""). Raises
    ``InvalidArgument`` for a digest that is not ``sha256:`` and 64 hex digits."""
    name, sep, digest = ref.partition("@")
    if sep and not DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid image reference {ref!r}: a digest is sha256:<64 hex>")
    return normalise(name), digest


def normalise_ref(ref: str) -> str:
    """The reference as a spec keeps it: ``nginx`` → ``nginx:latest``, a digest kept."""
    name, digest = split_digest(ref)
    return f"{name}@{digest}" if digest else name


def digest_warning(image: str) -> str:
    """Docker's words when a service's image cannot be pinned (moby digestWarning)."""
    return (
        f"image {image} could not be accessed on a registry to record\nits digest. Each node "
        f"will access {image} independently,\npossibly leading to different nodes running "
        "different\nversions of the image.\n"
    )


def decode_auth(header: str) -> RegistryAuth | None:
    """Docker's ``X-Registry-Auth`` (``RegistryAuth.from_header``): None when empty; raises
    ``InvalidArgument`` for one that does not decode."""
    return RegistryAuth.from_header(header)


async def no_registry(_ref: str, _auth: RegistryAuth | None) -> str | None:
    """A resolver for a manager without an image store (unit tests): the registry is never
    reached, so the tag is kept."""
    return None


async def pin_image(
    ref: str, auth: RegistryAuth | None, resolve: DigestResolver
) -> tuple[str, str]:
    """(the reference to keep in the spec, a warning or ""): ``name:tag@sha256:…`` when the
    registry answers, the tag and Docker's warning when it does not. Raises
    ``InvalidArgument`` for a malformed reference or an answer that is not a digest."""
    name, digest = split_digest(ref)
    if digest:
        return f"{name}@{digest}", ""
    found = await resolve(name, auth)
    if found is None:
        return name, digest_warning(name)
    if not DIGEST_RE.match(found):
        raise InvalidArgument(f"the registry answered {found!r} as the digest of {name}")
    return f"{name}@{found}", ""
