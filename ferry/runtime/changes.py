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
from collections.abc import Callable, Iterable
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


def in_lower(lower: Path) -> Callable[[str], bool]:
    """Whether the image has ``path``, looked up without following any of its links (a link
    in the image must not lead the lookup onto the host's files)."""

    def check(path: str) -> bool:
        current = lower
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            current = current / part
            try:
                mode = current.lstat().st_mode
            except FileNotFoundError:
                return False
            if stat.S_ISLNK(mode) and i < len(parts) - 1:
                return False
        return True

    return check
