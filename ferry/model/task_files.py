"""Secrets and configs a service's tasks get as files: Docker's SecretReference and
ConfigReference with a ``File`` target (``--secret source=NAME,target=…,uid=…,gid=…,mode=…``).

Where a file lands in the container is Docker's rule (moby ``getSecretTargetPath`` and
``getConfigTargetPath``): an absolute ``File.Name`` is used as it is; a relative one is under
``/run/secrets/`` for a secret and under ``/`` for a config. The checks are swarmkit's
(``controlapi/service.go``, ``validateSecretRefsSpec`` and ``validateConfigRefsSpec``), with
its messages; Ferry also refuses a target that climbs out with ``..`` or holds a NUL byte,
which no file name can.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum

from ferry.errors import InvalidArgument

SECRETS_DIR = "/run/secrets"
MAX_ID = 4294967294  # the largest uid or gid the kernel takes ((uid_t)-1 means "none")
# where a file cannot be bound: the root, the secrets' own directory, and the filesystems the
# runtime mounts itself (runc refuses binds inside /proc; /dev and /sys are its own)
_NO_FILE_HERE = ("/", SECRETS_DIR)
_RUNTIME_DIRS = ("/proc", "/sys", "/dev")
DEFAULT_MODE = 0o444  # the docker CLI's default for --secret and --config


class FileKind(StrEnum):
    SECRET = "secret"
    CONFIG = "config"


@dataclass(frozen=True)
class FileRef:
    """One secret or config a task gets as a file: the object (id and name, as the spec
    names both) and the file (``File.Name``, owner ``uid``/``gid`` as decimal strings, as
    Docker's API has them, and permission bits ``mode``)."""

    kind: FileKind
    obj_id: str
    obj_name: str
    name: str
    uid: str = "0"
    gid: str = "0"
    mode: int = DEFAULT_MODE

    @property
    def path(self) -> str:
        """Where the file is inside the container (absolute, normalised)."""
        base = SECRETS_DIR if self.kind == FileKind.SECRET else "/"
        return posixpath.normpath(posixpath.join(base, self.name))


def check_refs(refs: tuple[FileRef, ...], kind: FileKind) -> None:
    """swarmkit's checks of a spec's secret (or config) references; InvalidArgument with its
    words: an id and a name each, a file name, no two on one target; and a uid, gid and mode
    the node can apply."""
    seen: dict[str, str] = {}
    for ref in refs:
        if not ref.obj_id or not ref.obj_name:
            raise InvalidArgument(f"malformed {kind.value} reference")
        if not ref.name or "\0" in ref.name or ".." in ref.name.split("/"):
            raise InvalidArgument(
                f"malformed file {kind.value} reference, invalid target file name provided"
            )
        for field, value in (("uid", ref.uid), ("gid", ref.gid)):
            if not value.isdigit() or int(value) > MAX_ID:
                raise InvalidArgument(
                    f"invalid {kind.value} reference {ref.obj_name}: {field} {value!r} is "
                    f"not a number from 0 to {MAX_ID} (numeric ids only, as Docker's daemon "
                    "reads them)"
                )
        path = ref.path
        if path in _NO_FILE_HERE or any(path == d or path.startswith(d + "/")
                                        for d in _RUNTIME_DIRS):  # fmt: skip
            raise InvalidArgument(
                f"invalid {kind.value} reference {ref.obj_name}: target {path} cannot be a "
                f"file (it is / or {SECRETS_DIR}, or inside /proc, /sys or /dev)"
            )
        if not 0 <= ref.mode <= 0o777:
            raise InvalidArgument(
                f"invalid {kind.value} reference {ref.obj_name}: mode {ref.mode:o} is not a "
                "file mode (0 to 0777)"
            )
        if ref.path in seen:
            raise InvalidArgument(
                f"{kind.value} references '{seen[ref.path]}' and '{ref.obj_name}' have a "
                f"conflicting target: '{ref.name}'"
            )
        seen[ref.path] = ref.obj_name
    check_nesting([r.path for r in refs])


def check_nesting(paths: list[str]) -> None:
    """No file inside another's path: ``/run/secrets/a`` and ``/run/secrets/a/b`` cannot both
    be files (InvalidArgument)."""
    for path in paths:
        for other in paths:
            if other.startswith(path + "/"):
                raise InvalidArgument(
                    f"conflicting targets: '{other}' would be inside the file '{path}'"
                )
