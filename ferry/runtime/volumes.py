"""Named volumes of the ``local`` driver: a directory each under ``<state>/volumes/<name>/_data``
(Docker's own layout), with a small record of its labels and creation time beside it.

A volume outlives the containers that use it (``rm`` leaves it; ``rm -v`` and ``--rm`` remove
only anonymous ones, as Docker does) and several containers may mount it at once.

Be aware: Docker copies the image's files at the mount point into a new, empty volume; Ferry
does not (a new volume starts empty).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ferry.daemon.files import read_json, write_json
from ferry.errors import Conflict, InvalidArgument, NotFound
from ferry.model.ids import new_hex_id
from ferry.model.times import now_iso

# Docker's volume name rule (moby volume/local: validName); also what keeps a name one path
# segment, never '..' or a slash.
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
DRIVER = "local"


@dataclass(frozen=True)
class Volume:
    name: str
    mountpoint: Path
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False


def check_volume_name(name: str) -> None:
    if not NAME_RE.match(name) or name in (".", ".."):
        raise InvalidArgument(
            f'"{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )


def check_bind_source(source: str) -> str:
    """A bind mount's host path: absolute and without ``..`` (Docker reads it as given; Ferry
    refuses the spellings that hide where it points). Returns the normalised path.

    TODO: use the safe in-root resolver of ``ferry/runtime/archive.py`` once it lands.
    """
    if not source.startswith("/"):
        raise InvalidArgument(f"invalid bind source {source!r}: use an absolute host path")
    if ".." in source.split("/"):
        raise InvalidArgument(f"invalid bind source {source!r}: '..' is not allowed in it")
    return os.path.normpath(source)


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, name: str) -> Path:
        check_volume_name(name)
        return self.root / name

    def get(self, name: str) -> Volume:
        directory = self._dir(name)
        record = read_json(directory / "volume.json")
        if record is None:
            raise NotFound(f"get {name}: no such volume")
        return Volume(
            name,
            directory / "_data",
            str(record.get("created", "")),
            dict(record.get("labels") or {}),
            bool(record.get("anonymous", False)),
        )

    def exists(self, name: str) -> bool:
        return (self._dir(name) / "volume.json").exists()

    def create(
        self,
        name: str = "",
        labels: dict[str, str] | None = None,
        driver: str = DRIVER,
        options: dict[str, str] | None = None,
    ) -> Volume:
        """Create a volume, or return the one of that name (Docker's create is idempotent).
        No name: an anonymous volume with a random one."""
        if driver not in ("", DRIVER):
            raise InvalidArgument(f"volume driver {driver!r} is not supported: use local")
        if options:
            raise InvalidArgument(
                f"volume driver options are not supported: {', '.join(sorted(options))}"
            )
        anonymous = not name
        name = name or new_hex_id()
        directory = self._dir(name)
        if (directory / "volume.json").exists():
            return self.get(name)
        (directory / "_data").mkdir(parents=True, exist_ok=True)
        write_json(
            directory / "volume.json",
            {"created": now_iso(), "labels": dict(labels or {}), "anonymous": anonymous},
        )
        return self.get(name)

    def all(self) -> list[Volume]:
        if not self.root.is_dir():
            return []
        return [self.get(p.parent.name) for p in sorted(self.root.glob("*/volume.json"))]

    def remove(self, name: str, in_use_by: list[str], force: bool = False) -> None:
        if not self.exists(name):
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        if in_use_by:
            raise Conflict(
                f"remove {name}: volume is in use - [{', '.join(in_use_by)}]"
            )  # Docker's message
        shutil.rmtree(self._dir(name))

    def prune(self, used: set[str], all_volumes: bool = False) -> tuple[list[str], int]:
        """Remove unused volumes (only anonymous ones unless ``all_volumes``, as Docker 23+);
        returns their names and the bytes freed."""
        removed, freed = [], 0
        for volume in self.all():
            if volume.name in used or not (volume.anonymous or all_volumes):
                continue
            freed += sum(p.lstat().st_size for p in volume.mountpoint.rglob("*") if not p.is_dir())
            shutil.rmtree(self._dir(volume.name))
            removed.append(volume.name)
        return removed, freed
