"""What ``docker rmi`` removes: a plan over an image's references and its containers (pure
data, no I/O; ``ImageStore.remove`` applies it).

The rules are Docker's daemon's (daemon/images/image_delete.go):
- A *repository reference* (a tag, or ``name@digest``) is untagged. Without ``force`` it is
  refused when it is the image's only reference (one tag, and digests of the same
  repository) and a container, running or not, uses the image: ``conflict: unable to remove
  repository reference "REF" (must force) - container C is using its referenced image I``.
  Untagging a repository's last tag also untags that repository's digests. When no
  reference is left, the image is deleted, unless a running container uses it: then it stays,
  dangling, for that container (``rmi -f`` of a running container's image prints only
  ``Untagged:`` lines, and the container runs and restarts on it).
- An *image id* deletes the image with every reference. A running container's image cannot
  be: ``conflict: unable to delete I (cannot be forced) - image is being used by running
  container C``. Without ``force`` neither can a stopped container's, nor an image tagged in
  several repositories (``(must be forced) - …``).

Be aware: where Docker deletes an image that a *stopped* container still uses (``rmi -f``),
Ferry removes the references Docker would and keeps the image, dangling, until the container
is gone (Docker keeps such a container's layers in its own layer store; Ferry's containers
use their image's): ``Deleted:`` is then not printed, and an id with nothing left to untag is
refused with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ferry.errors import Conflict


@dataclass(frozen=True)
class ImageUser:
    """A container of the image (Docker pins a container to its image's id at create)."""

    container_id: str
    running: bool


@dataclass(frozen=True)
class Removal:
    """What to remove: ``tags`` and ``digests`` (familiar ``name:tag``/``name@sha256:…``),
    and the image itself when ``delete``."""

    image_id: str
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    delete: bool = False

    def records(self) -> list[dict[str, str]]:
        """Docker's answer: ``{"Untagged": …}`` per reference, then ``{"Deleted": id}``."""
        out = [{"Untagged": ref} for ref in (*self.tags, *self.digests)]
        return out + ([{"Deleted": self.image_id}] if self.delete else [])


def repository(ref: str) -> str:
    """``nginx:1`` and ``nginx@sha256:…`` → ``nginx``; ``localhost:5000/app:v1`` →
    ``localhost:5000/app`` (a familiar reference from the store)."""
    name = ref.partition("@")[0]
    last = name.rsplit("/", 1)[-1]
    return name.rpartition(":")[0] if ":" in last else name


def single_reference(tags: Sequence[str], digests: Sequence[str]) -> bool:
    """Docker's ``isSingleReference``: one reference, or one tag at most and every reference
    in one repository."""
    if len(tags) + len(digests) <= 1:
        return len(tags) + len(digests) == 1
    return len(tags) <= 1 and len({repository(r) for r in (*tags, *digests)}) == 1


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _conflict(image_id: str, hard: bool, message: str) -> Conflict:
    forced = "cannot be forced" if hard else "must be forced"
    return Conflict(f"conflict: unable to delete {_short(image_id)} ({forced}) - {message}")


def plan_removal(
    image_id: str,
    ref: str | None,
    *,
    tags: Sequence[str],
    digests: Sequence[str],
    users: Sequence[ImageUser],
    force: bool,
    typed: str = "",
) -> Removal:
    """The plan for ``docker rmi [-f] NAME``: ``ref`` the familiar reference NAME is (a tag or
    ``name@digest`` the image has), None when NAME is the image's id (or a prefix of it);
    ``typed`` NAME as given (Docker's messages quote it). Raises ``Conflict`` with Docker's
    words (module docstring)."""
    if ref is None:
        return _by_id(image_id, tags, digests, users, force=force)
    if not force and single_reference(tags, digests) and users:
        raise Conflict(
            f'conflict: unable to remove repository reference "{typed or ref}" (must force) - '
            f"container {users[0].container_id[:12]} is using its referenced image "
            f"{_short(image_id)}"
        )
    drop_tags = [ref] if ref in tags else []
    drop_digests = [ref] if ref in digests else []
    left_tags = [t for t in tags if t != ref]
    repo = repository(ref)
    if drop_tags and not any(repository(t) == repo for t in left_tags):
        drop_digests += [d for d in digests if repository(d) == repo]
    left_digests = [d for d in digests if d not in drop_digests]
    # with no reference left the image goes, but never from under a container (see above)
    delete = not left_tags and not left_digests and not users
    return Removal(image_id, tuple(drop_tags), tuple(drop_digests), delete)


def _by_id(
    image_id: str, tags: Sequence[str], digests: Sequence[str], users: Sequence[ImageUser],
    *, force: bool
) -> Removal:  # fmt: skip
    running = next((u for u in users if u.running), None)
    if running is not None:
        message = f"image is being used by running container {running.container_id[:12]}"
        raise _conflict(image_id, True, message)
    if not force:
        if not single_reference(tags, digests) and (tags or digests):
            raise _conflict(image_id, False, "image is referenced in multiple repositories")
        if users:
            message = f"image is being used by stopped container {users[0].container_id[:12]}"
            raise _conflict(image_id, False, message)
    if users and not tags and not digests:
        raise _conflict(
            image_id,
            True,
            f"image is being used by stopped container {users[0].container_id[:12]} (Ferry "
            "keeps an image while a container has it: remove the container first)",
        )
    return Removal(image_id, tuple(tags), tuple(digests), delete=not users)
