"""``docker diff``: what a container changed in its root filesystem, read from the upper
layer of its overlay (pure planning over a listing; the walk is in ``walk_upper``).

Docker's kinds: 0 modified, 1 added, 2 deleted. A whiteout (a character device 0:0, the
overlay's mark of a deletion) is a deletion; a file of the upper layer that the image also has
was modified, one it lacks was added; directories on the way to a change appear as modified,
as in Docker's listing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

MODIFIED, ADDED, DELETED = 0, 1, 2


# what the runtime itself puts into every container's root (mount points of its own files)
RUNTIME_PATHS = frozenset({"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/sbin/docker-init"})


def plan_changes(
    entries: Iterable[tuple[str, bool]],
    in_image: Callable[[str], bool],
    ignore: frozenset[str] = RUNTIME_PATHS,
) -> list[dict[str, object]]:
    """``entries``: (path below the root, is a whiteout) of the upper layer; ``ignore``: the
    mount points the runtime made (its own files, the container's volumes), which Docker does
    not list either."""
    out = []
    for path, whiteout in sorted(entries):
        if path in ignore:
            continue
        if whiteout:
            out.append({"Path": path, "Kind": DELETED})
            continue
        kind = MODIFIED if in_image(path) else ADDED
        out.append({"Path": path, "Kind": kind})
    return out


def walk_upper(upper: Path) -> list[tuple[str, bool]]:
    """The upper layer's entries as (``/path``, is a whiteout), links never followed."""
    out = []
    for directory, subdirs, files in os.walk(upper):
        for name in subdirs + files:
            full = Path(directory) / name
            info = full.lstat()
            whiteout = stat.S_ISCHR(info.st_mode) and info.st_rdev == 0
            out.append(("/" + str(full.relative_to(upper)), whiteout))
    return out


def in_lower(lowers: Sequence[Path]) -> Callable[[str], bool]:
    """Whether the image (its layer directories, bottom first) has ``path``: the top-most
    layer that has an entry there decides (a whiteout, a 0:0 character device, says no), and
    an opaque directory on the way hides the layers below it. Looked up without following any
    of its links (a link in the image must not lead the lookup onto the host's files)."""

    def one(lower: Path, parts: list[str]) -> tuple[bool | None, bool]:
        """(found, whiteout or absent-in-an-opaque-dir decides) for one layer."""
        current = lower
        for i, part in enumerate(parts):
            current = current / part
            try:
                info = current.lstat()
            except FileNotFoundError:
                return None, False
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                return False, True
            if stat.S_ISLNK(info.st_mode) and i < len(parts) - 1:
                return False, True
            if i < len(parts) - 1 and _opaque(current):
                below = current.joinpath(*parts[i + 1 :])
                return (True, True) if os.path.lexists(below) else (False, True)
        return True, True

    def check(path: str) -> bool:
        parts = [p for p in path.split("/") if p]
        for lower in reversed(lowers):
            found, final = one(lower, parts)
            if found is not None and final:
                return found
        return False

    return check


def _opaque(directory: Path) -> bool:
    try:
        return os.getxattr(directory, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False
