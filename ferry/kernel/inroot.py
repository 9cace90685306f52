"""Paths from untrusted input, resolved inside a root directory and never outside it.

A ``Root`` is an open directory (an ``O_PATH`` descriptor) that every path handed to it is
resolved under, with the semantics of ``openat2(2)``'s ``RESOLVE_IN_ROOT``: the path is looked
up as if the root were ``/`` — a leading ``/`` or an absolute symlink starts again at the root,
``..`` stops at it — so no name, symlink or ``..`` can reach anything outside. This is what
Docker gets by unpacking inside ``chroot(2)`` of the layer's root (moby ``chrootarchive``) and
containerd by ``fs.RootPath``; the kernel does it here, race-free, without a process.
``RESOLVE_NO_MAGICLINKS`` also refuses ``/proc/<pid>/fd``-style links met on the way.

Only *directories* are looked up that way. The last component of a name is never followed:
every operation on an entry (create, remove, link, chown, chmod, utime, xattr) takes a
descriptor of the directory that holds it and the entry's bare name, and either acts on the
name itself (``*at`` calls with ``AT_SYMLINK_NOFOLLOW``, ``O_NOFOLLOW``, ``O_EXCL``) or on a
descriptor of exactly that inode (through ``/proc/self/fd/N``). So a tree someone else changes
while we work — a running container's root — can make an operation fail, never escape.

Be aware: ``resolve_in_root`` returns a *path*, which is only as good as the moment it was
computed; a caller whose tree can change under it must work with descriptors from ``Root``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ferry.errors import InvalidArgument, Unavailable

# openat2(2) has the same number on every architecture that has it (the unified syscall table).
_SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_EAGAIN_TRIES = 64  # RESOLVE_IN_ROOT answers EAGAIN when a rename raced the walk: try again

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def openat2(dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
    """``openat2(2)``: a new descriptor (close-on-exec) or ``OSError`` with the errno."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    raw = os.fsencode(path)
    for _ in range(_EAGAIN_TRIES):
        fd = _libc.syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_long(dirfd),
            ctypes.c_char_p(raw),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            raise Unavailable("this kernel has no openat2(2) (Linux 5.6 or later is needed)")
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, "the tree kept changing while it was resolved", path)


def clean(untrusted: str) -> str:
    """An untrusted name as a path relative to a root, ``""`` for the root itself.

    Lexical, as Go's ``filepath.Clean("/" + name)`` (what Docker applies to tar names before
    joining them to ``/`` inside its chroot): empty, ``.`` and repeated ``/`` components go,
    ``..`` removes the component before it and stops at the root. Raises ``InvalidArgument``
    for a NUL byte, which no path can hold.
    """
    if "\x00" in untrusted:
        raise InvalidArgument(f"{untrusted!r}: a path cannot contain a NUL byte")
    parts: list[str] = []
    for part in untrusted.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def split(rel: str) -> tuple[str, str]:
    """``("a/b", "c")`` for ``"a/b/c"``: the directory to resolve and the name not to follow."""
    head, _, base = rel.rpartition("/")
    return head, base


@dataclass(frozen=True)
class Meta:
    """What an entry carries besides its content: numeric owner, permission bits (setuid,
    setgid and sticky included), times in nanoseconds, extended attributes."""

    uid: int = 0
    gid: int = 0
    mode: int = 0o644
    atime_ns: int = 0
    mtime_ns: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


class Root:
    """A directory that untrusted paths are resolved inside; see the module's notes.

    Use as a context manager (it holds one descriptor). Methods named ``*_entry`` take the
    descriptor of a directory inside the root (from ``dir``) and one bare name, never a path.
    Errors are ``OSError`` with the kernel's errno; callers translate them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # resolving ---------------------------------------------------------------------------
    def open(self, rel: str, flags: int, mode: int = 0) -> int:
        """Open ``rel`` (already ``clean``) resolved inside the root; symlinks, the last one
        included unless ``flags`` has ``O_NOFOLLOW``, resolve as if the root were ``/``."""
        return openat2(self.fd, rel or ".", flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

    def dir(self, rel: str, create: bool = False) -> int:
        """An ``O_PATH`` descriptor of the directory ``rel`` inside the root. With ``create``,
        missing directories are made (mode 0755, owner root: Docker's implied directories).
        ``FileNotFoundError``/``NotADirectoryError`` when it cannot be had."""
        flags = os.O_PATH | os.O_DIRECTORY
        try:
            return self.open(rel, flags)
        except FileNotFoundError:
            if not create:
                raise
        fd = os.dup(self.fd)
        try:
            done: list[str] = []
            for part in rel.split("/"):
                done.append(part)
                try:
                    nxt = self.open("/".join(done), flags)
                except FileNotFoundError:
                    # Made in the directory we hold; a dangling symlink of that name gives
                    # EEXIST and the open below fails: nothing is created through it.
                    made = True
                    try:
                        os.mkdir(part, 0o700, dir_fd=fd)
                    except FileExistsError:
                        made = False
                    nxt = self.open("/".join(done), flags)
                    if made:  # 0755 whatever the umask, on the inode we hold
                        os.chmod(f"/proc/self/fd/{nxt}", 0o755)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def where(self, fd: int) -> Path:
        """The host path of a descriptor from this root (for messages and for callers that
        need a path); refuses one that is not inside the root, which cannot happen."""
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
        top = Path(os.readlink(f"/proc/self/fd/{self.fd}"))
        if real != top and top not in real.parents:
            raise InvalidArgument(f"{real} is outside {top}")
        return real

    # entries -------------------------------------------------------------------------------
    def lstat_entry(self, dir_fd: int, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def remove_entry(self, dir_fd: int, name: str) -> None:
        """Remove ``name`` and, for a directory, everything below it, following no symlink."""
        st = self.lstat_entry(dir_fd, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            _remove_dir(dir_fd, name)
        else:
            os.unlink(name, dir_fd=dir_fd)

    def children(self, dir_fd: int, name: str = "") -> tuple[int, list[str]]:
        """A readable descriptor of directory ``name`` (``""``: ``dir_fd`` itself), not
        followed if it is a symlink, and the names in it."""
        fd = os.open(name or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
        return fd, os.listdir(fd)

    def create_file(self, dir_fd: int, name: str) -> int:
        """A new regular file opened for writing (mode 0600 until ``set_meta``)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(name, flags, 0o600, dir_fd=dir_fd)

    def create_dir(self, dir_fd: int, name: str) -> None:
        os.mkdir(name, 0o700, dir_fd=dir_fd)

    def create_symlink(self, dir_fd: int, name: str, target: str) -> None:
        os.symlink(target, name, dir_fd=dir_fd)

    def create_node(self, dir_fd: int, name: str, kind: int, major: int, minor: int) -> None:
        """A character or block device (``stat.S_IFCHR``/``S_IFBLK``) or a fifo (``S_IFIFO``)."""
        os.mknod(name, kind | 0o600, os.makedev(major, minor), dir_fd=dir_fd)

    def link_entry(self, src_dir_fd: int, src_name: str, dir_fd: int, name: str) -> None:
        """A hard link to the source entry itself: a symlink is linked, not followed, as
        link(2) does on Linux."""
        os.link(src_name, name, src_dir_fd=src_dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)

    def set_meta(
        self, dir_fd: int, name: str, meta: Meta, times: bool = True, fd: int | None = None
    ) -> None:
        """Owner, then xattrs (a chown drops file capabilities), then mode (a chown drops
        setuid/setgid), then times — Docker's order. A symlink gets owner, xattrs and times
        but no mode (Linux has none for symlinks). ``fd``: the entry is already open for
        writing (a file just written), so act on that descriptor rather than on the name."""
        if fd is not None:  # a real descriptor: the f* calls, no path at all
            os.fchown(fd, meta.uid, meta.gid)
            for key, value in meta.xattrs:
                os.setxattr(fd, key, value)
            os.fchmod(fd, meta.mode & 0o7777)
            if times:
                os.utime(fd, ns=(meta.atime_ns, meta.mtime_ns))
            return
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                # Never followed: every call names the entry and refuses to follow it.
                os.chown(name, meta.uid, meta.gid, dir_fd=dir_fd, follow_symlinks=False)
                entry = f"/proc/self/fd/{dir_fd}/{name}"
                for key, value in meta.xattrs:
                    os.setxattr(entry, key, value, follow_symlinks=False)
                if times:
                    ns = (meta.atime_ns, meta.mtime_ns)
                    os.utime(name, ns=ns, dir_fd=dir_fd, follow_symlinks=False)
                return
            self._set_inode_meta(f"/proc/self/fd/{fd}", meta, times)
        finally:
            os.close(fd)

    @staticmethod
    def _set_inode_meta(inode: str, meta: Meta, times: bool) -> None:
        # Through a descriptor's magic link: exactly that inode, whatever its name is now.
        os.chown(inode, meta.uid, meta.gid)
        for key, value in meta.xattrs:
            os.setxattr(inode, key, value)
        os.chmod(inode, meta.mode & 0o7777)
        if times:
            os.utime(inode, ns=(meta.atime_ns, meta.mtime_ns))

    def subdir(self, dir_fd: int, name: str) -> int:
        """An ``O_PATH`` descriptor of directory ``name`` in ``dir_fd``; a symlink is refused
        (ELOOP/ENOTDIR), not followed."""
        flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(name, flags, dir_fd=dir_fd)

    def set_times(self, dir_fd: int, name: str, atime_ns: int, mtime_ns: int) -> None:
        os.utime(name, ns=(atime_ns, mtime_ns), dir_fd=dir_fd, follow_symlinks=False)

    def identity(self, fd: int) -> tuple[int, int]:
        """``(st_dev, st_ino)`` of a descriptor: which directory an entry really went into."""
        st = os.fstat(fd)
        return st.st_dev, st.st_ino


_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove_dir(parent_fd: int, name: str) -> None:
    """Remove directory ``name`` and its tree, depth first, by descriptors and bare names:
    a symlink met is unlinked, never followed; a directory swapped for a symlink meanwhile
    fails (O_NOFOLLOW). Iterative, unlike ``shutil.rmtree`` (Python 3.11), which recurses
    and dies of RecursionError on a tree ~1000 deep — a tree an image or a container makes."""
    stack = [(os.open(name, _DIR_NOFOLLOW, dir_fd=parent_fd), name)]
    try:
        while stack:
            fd = stack[-1][0]
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                stack.append((os.open(child, _DIR_NOFOLLOW, dir_fd=fd), child))
                continue
            os.close(fd)
            _, done = stack.pop()
            os.rmdir(done, dir_fd=stack[-1][0] if stack else parent_fd)
    finally:
        for fd, _ in stack:
            os.close(fd)


def remove_tree(path: Path) -> None:
    """``rm -rf path`` for a tree whose contents are untrusted (an image, a container's
    writable layer): no symlink followed, no depth limit. Nothing there is fine."""
    try:
        parent = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        st = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _remove_dir(parent, path.name)
        else:
            os.unlink(path.name, dir_fd=parent)
    except FileNotFoundError:
        return
    finally:
        os.close(parent)


def resolve_in_root(root: Path, untrusted: str) -> Path:
    """The host path that ``untrusted`` names inside ``root``, every symlink resolved as if
    ``root`` were ``/`` (what ``securejoin``/``FollowSymlinkInScope`` give Docker for mount
    destinations and ``docker cp`` targets). Components that do not exist yet are appended
    as they are, so a destination may be created afterwards.

    For volume names, bind sources below a root, ``cp`` destinations. Raises
    ``InvalidArgument`` for a NUL byte, a missing component that is a dangling symlink (its
    target is not created through it) or a non-directory in the middle.
    """
    rel = clean(untrusted)
    parts = rel.split("/") if rel else []
    with Root(root) as r:
        for existing in range(len(parts), -1, -1):
            try:
                fd = r.open("/".join(parts[:existing]), os.O_PATH)
            except FileNotFoundError:
                continue
            except NotADirectoryError as exc:
                raise InvalidArgument(f"{untrusted}: a component is not a directory") from exc
            except OSError as exc:  # ELOOP, ENAMETOOLONG: the name itself is at fault
                raise InvalidArgument(f"{untrusted}: {exc.strerror}") from exc
            try:
                base = r.where(fd)
                rest = parts[existing:]
                if rest and not stat.S_ISDIR(os.fstat(fd).st_mode):
                    raise InvalidArgument(f"{untrusted}: a component is not a directory")
                if rest and r.lstat_entry(fd, rest[0]) is not None:
                    raise InvalidArgument(
                        f"{untrusted}: {rest[0]!r} is a symlink whose target does not exist"
                    )
            finally:
                os.close(fd)
            return base.joinpath(*rest)
    raise AssertionError("the root itself always resolves")  # pragma: no cover
