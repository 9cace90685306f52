"""A task's secrets and configs as files on the host, for runc to bind into its container.

Each container that has any gets a tmpfs of its own (``<container dir>/files``, mounted when
it starts, unmounted when it ends, as Docker's daemon keeps a container's secrets in memory);
each reference becomes one file there, owned and moded as the reference says, and is bound
read-only at its path in the container. The data comes from a manager each time the container
starts (``agent/tasks.py``) and is never written anywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

from ferry.errors import NotFound
from ferry.kernel import mounts
from ferry.model.runopts import MountType
from ferry.model.task_files import FileRef
from ferry.runtime.oci import ResolvedMount

MIN_TMPFS_BYTES = 64 * 1024
PAGE = 4096


def data_key(ref: FileRef) -> str:
    """How a manager's answer names the data of ``ref``'s object."""
    return f"{ref.kind.value}/{ref.obj_id}"


def tmpfs_size(refs: tuple[FileRef, ...], data: dict[str, bytes]) -> int:
    """Room for every file, each rounded up to whole pages (a tmpfs counts pages)."""
    pages = sum(-(-len(data.get(data_key(r), b"")) // PAGE) + 1 for r in refs)
    return max(MIN_TMPFS_BYTES, pages * PAGE)


def write(directory: Path, refs: tuple[FileRef, ...], data: dict[str, bytes]) -> None:
    """Mount ``directory`` (a tmpfs, if not yet) and write one file per reference: ``0``,
    ``1``… in the order of ``refs``. NotFound when ``data`` lacks an object's."""
    missing = [r.obj_name for r in refs if data_key(r) not in data]
    if missing:
        raise NotFound(f"no data for {', '.join(missing)}: the manager did not send it")
    directory.mkdir(mode=0o700, exist_ok=True)
    if not mounts.is_mounted(directory):
        mounts.mount_tmpfs(directory, tmpfs_size(refs, data))
    for index, ref in enumerate(refs):
        path = directory / str(index)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data[data_key(ref)])
            os.fchown(fd, int(ref.uid), int(ref.gid))
            os.fchmod(fd, ref.mode)
        finally:
            os.close(fd)


def bind_mounts(directory: Path, refs: tuple[FileRef, ...]) -> tuple[ResolvedMount, ...]:
    """The read-only binds of the files ``write`` made, at each reference's path."""
    return tuple(
        ResolvedMount(MountType.BIND, ref.path, str(directory / str(index)), read_only=True)
        for index, ref in enumerate(refs)
    )


def remove(directory: Path) -> None:
    """Unmount the container's tmpfs (idempotent): its files are gone with it."""
    mounts.unmount(directory)
