"""Unpacking tar streams into a root directory, and never anywhere else.

One entry point, ``extract_layer(stream, root, source)``, for every archive that comes from
outside: a root filesystem tarball (``docker export``, ``docker import``), each layer of a
``docker save`` image, a registry blob (issue 11) and a ``docker cp`` archive (issue 10). It
reads the stream once, front to back, holding one entry at a time (the stream may be gzip,
bzip2, xz or zstd compressed), and applies it with the semantics of an OCI/Docker layer.

Where each entry goes (the rules Docker follows by unpacking inside ``chroot(2)`` of the root,
moby ``pkg/chrootarchive``; containerd's ``fs.RootPath`` gives the same):
- A name is cleaned as if it were absolute: ``/etc/x`` and ``../../etc/x`` both mean the
  root's ``etc/x`` (neutralised, as in Docker; nothing is refused for it).
- Its directory part is resolved inside the root (``ferry.kernel.inroot``): a symlink on the
  way — to ``/``, to ``/etc``, to ``../../..``, a chain of them — resolves as if the root were
  ``/``, so ``link -> /etc`` then ``link/passwd`` writes the *image's* ``/etc/passwd``. Missing
  directories are made 0755, owned by root (Docker's implied directories).
- Its last component is never followed: whatever is there (file, symlink, directory) is
  removed and replaced, except a directory over a directory, which is merged (metadata from
  the new entry), as in Docker.
- Symlinks are stored verbatim (their targets are data, never followed while unpacking).
- A hard link's target is resolved the same way (``/etc/shadow`` means the root's), never
  followed at its last component (a link to a symlink links the symlink, as link(2) does);
  a target that does not exist in the root is refused.
- Character and block devices are made with mknod(2), fifos with mkfifo: Docker does so when
  it unpacks as root outside a user namespace (moby ``createTarFile``; it skips devices only
  inside a user namespace). Owners are numeric (uid/gid of the entry, names ignored), set
  before the mode so setuid/setgid bits survive, as Docker keeps them; xattrs
  (``SCHILY.xattr.*``) are set, except ``trusted.overlay.*``, which would steer the overlay
  mount the image is used through and is refused; times are set, directories' last.
- Whiteouts (OCI image spec, "Whiteouts"): ``DIR/.wh.NAME`` removes ``NAME`` from the layers
  below — not an entry this same layer made —, ``DIR/.wh..wh..opq`` removes everything in
  ``DIR`` that this layer did not make. ``DIR`` resolves inside the root like any directory;
  when it does not exist there is nothing to hide. Other ``.wh..wh.`` names (AUFS's private
  directories) and ``.wh.`` with an empty, ``.`` or ``..`` name are refused.
- Refused, naming the entry (``InvalidArgument``): a non-directory entry for the root itself,
  a NUL byte in a name or link, an unknown entry type, a parent that is not a directory or is
  a dangling symlink, a hard link to nothing or to a directory, names the kernel refuses
  (ENAMETOOLONG). Other failures of the filesystem (ENOSPC, EIO) are ``KernelError``.

Be aware: PAX records other than times, owners and ``SCHILY.xattr.*`` (star's ACLs,
LIBARCHIVE.*) are not applied, as in Docker. The ``root`` directory itself must be trusted.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ferry.errors import InvalidArgument, KernelError
from ferry.kernel.inroot import Meta, Root, clean, split
from ferry.runtime.compression import CorruptStream, Readable, SourceError, decompressed

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
CHUNK_BYTES = 1 << 20
# errnos that mean "this archive asks for something impossible", not "the disk failed"
_ARCHIVE_FAULTS = {
    errno.ENOENT, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG,
    errno.EPERM, errno.EINVAL, errno.EXDEV, errno.EMLINK, errno.ENOTEMPTY, errno.ERANGE,
    errno.E2BIG, errno.EOPNOTSUPP,
}  # fmt: skip
_WHY = {
    errno.ENOENT: "its directory is not in the image (a symlink on the way leads nowhere inside "
    "it: paths resolve inside the image, never on the host)",
    errno.ENOTDIR: "something on its way is not a directory",
    errno.ELOOP: "too many symlinks on its way (a loop)",
}
_NODES = {
    tarfile.CHRTYPE: stat.S_IFCHR,
    tarfile.BLKTYPE: stat.S_IFBLK,
    tarfile.FIFOTYPE: stat.S_IFIFO,
}


@dataclass(frozen=True)
class Unpack:
    """How an archive is applied; the defaults unpack an image layer.

    - ``into``: the directory inside the root that names start from (``docker cp``'s
      destination, PUT /containers/{id}/archive ``path``); a name's ``..`` stops there, while
      symlinks still resolve inside the whole root (Docker: ``UntarWithRoot``).
    - ``layer``: OCI layer rules (``.wh.`` whiteouts, the root entry's metadata applied). False
      is Docker's ``Unpack`` for ``docker cp``: ``.wh.`` names are ordinary files and an entry
      for the destination itself is skipped.
    - ``replace_dirs``: False refuses to replace a directory by a non-directory or back
      (the archive endpoint's ``noOverwriteDirNonDir``).
    - ``owner``: ``(uid, gid)`` for every entry instead of the archive's (``docker cp``
      without ``copyUIDGID`` gives the container's root).
    - ``overlay``: the layer is unpacked alone into its own directory, one lower directory of
      an overlay mount: a whiteout becomes overlayfs's mark (a 0:0 character device of the
      hidden name), an opaque directory gets ``trusted.overlay.opaque=y`` (the kernel's
      overlayfs documentation, "whiteouts and opaque directories"), instead of removing.
    """

    into: str = ""
    layer: bool = True
    replace_dirs: bool = True
    owner: tuple[int, int] | None = None
    overlay: bool = False


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


LAYER = Unpack()
OVERLAY_LAYER = Unpack(overlay=True)
OPAQUE_XATTR = ("trusted.overlay.opaque", b"y")


@dataclass(frozen=True)
class LayerStats:
    entries: int
    size_bytes: int  # of regular files' contents, as Docker counts a layer's size


def extract_layer(
    stream: Readable,
    root: Path | Root,
    source: str,
    how: Unpack = LAYER,
    digest: Digest | None = None,
) -> LayerStats:
    """Apply one tar stream (compressed or not) to ``root``; see the module notes and
    ``Unpack`` for the other uses (``docker cp``).

    ``source`` names the archive in errors ("busybox.tar", "img.tar:abc/layer.tar"). Raises
    ``InvalidArgument`` naming the entry for what an archive must not do or a corrupt stream,
    ``KernelError`` when the filesystem fails. A failed extraction leaves what it had applied:
    callers unpack into a staging directory they drop on failure. ``digest`` is fed every byte
    of the uncompressed stream, to its end (a layer's DiffID, OCI image spec "Layer DiffID").
    """
    if isinstance(root, Path):
        with Root(root) as opened:
            return extract_layer(stream, opened, source, how, digest)
    layer = _Layer(root, source, how)
    try:
        with decompressed(stream) as plain:
            raw = _Tap(plain, digest) if digest is not None else plain
            with tarfile.open(fileobj=raw, mode="r|") as tar:  # type: ignore[call-overload]
                for member in _members(tar):
                    layer.apply(member, tar)
            while digest is not None and raw.read(CHUNK_BYTES):
                pass  # the end-of-archive blocks and padding are part of the DiffID
    except (CorruptStream, tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"{source}: not a valid tar archive: {exc}") from exc
    except SourceError as exc:
        cause = exc.cause
        raise KernelError("read", source, cause.errno, cause.strerror or "") from cause
    layer.finish()
    return LayerStats(layer.entries, layer.size_bytes)


class _Tap:
    """A stream that shows every byte read through it to a digest."""

    def __init__(self, stream: Readable, digest: Digest) -> None:
        self.stream = stream
        self.digest = digest

    def read(self, size: int = -1, /) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        return data


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tar.next()) is not None:
        yield member
        # tarfile keeps every header it read in .members (untyped): a stream holds one at a time
        tar.members.clear()  # type: ignore[attr-defined]


def meta_of(member: tarfile.TarInfo, source: str) -> Meta:
    """An entry's owner, mode, times and xattrs (PAX ``SCHILY.xattr.*``); Docker's rule for
    times: the access time is never before the modification time."""
    mtime_ns = round(member.mtime * 1e9)
    try:
        atime_ns = max(mtime_ns, round(float(member.pax_headers.get("atime", 0)) * 1e9))
    except ValueError:
        atime_ns = mtime_ns
    xattrs: list[tuple[str, bytes]] = []
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr.") :]
        if name.startswith("trusted.overlay."):
            raise InvalidArgument(
                f"{source}: {member.name!r} carries the xattr {name}: overlayfs's own state "
                "cannot come from an image"
            )
        xattrs.append((name, value.encode("utf-8", "surrogateescape")))
    return Meta(member.uid, member.gid, member.mode & 0o7777, atime_ns, mtime_ns, tuple(xattrs))


class _Layer:
    """The state of one layer being applied: which entries it made (an opaque directory
    keeps those) and the directories whose times are set last."""

    def __init__(self, root: Root, source: str, how: Unpack) -> None:
        self.root = root
        self.source = source
        self.how = how
        self.into = clean(how.into)
        self.made: set[tuple[int, int, str]] = set()  # (dev, ino) of the directory, name
        self.heads: set[str] = set()  # directories already counted by _made_below
        self.dir_times: list[tuple[str, int, int]] = []
        self.entries = 0
        self.size_bytes = 0

    def meta(self, member: tarfile.TarInfo) -> Meta:
        meta = meta_of(member, self.source)
        if self.how.owner is None:
            return meta
        return replace(meta, uid=self.how.owner[0], gid=self.how.owner[1])

    def refuse(self, name: str, why: str) -> InvalidArgument:
        return InvalidArgument(f"{self.source}: {name!r}: {why}")

    def apply(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        self.entries += 1
        try:
            name = clean(member.name)
        except InvalidArgument as exc:
            raise self.refuse(member.name, "a name cannot contain a NUL byte") from exc
        rel = "/".join(p for p in (self.into, name) if p)
        head, base = split(rel)
        layer = self.how.layer
        try:
            if layer and base == OPAQUE:
                self._made_below(head)
                self.opaque(head)
            elif layer and any(p.startswith(WHITEOUT + WHITEOUT) for p in name.split("/")):
                raise self.refuse(member.name, "AUFS metadata (.wh..wh.*) is not a layer entry")
            elif layer and base.startswith(WHITEOUT):
                self._made_below(head)
                self.whiteout(member.name, head, base[len(WHITEOUT) :])
            elif not name:
                self.top_entry(member, rel)
            else:
                self.entry(member, tar, head, base)
        except OSError as exc:
            raise self.fs_error(member.name, exc) from exc

    def fs_error(self, name: str, exc: OSError) -> InvalidArgument | KernelError:
        if exc.errno in _ARCHIVE_FAULTS:
            why = _WHY.get(exc.errno or 0, exc.strerror or str(exc))
            return self.refuse(name, why)
        return KernelError("extract", f"{self.source}: {name!r}", exc.errno, exc.strerror or "")

    # whiteouts -------------------------------------------------------------------------------
    def whiteout(self, name: str, head: str, hidden: str) -> None:
        if hidden in ("", ".", ".."):
            raise self.refuse(name, "a whiteout must name one entry")
        if self.how.overlay:
            self.overlay_whiteout(head, hidden)
            return
        fd = self._existing_dir(head)
        if fd is None:
            return  # nothing below to hide
        try:
            if (*self.root.identity(fd), hidden) not in self.made:  # lower layers only
                self.root.remove_entry(fd, hidden)
        finally:
            os.close(fd)

    def overlay_whiteout(self, head: str, hidden: str) -> None:
        """The mark overlayfs reads in a lower directory; an entry this layer made itself
        stays (a whiteout hides only what the layers below have)."""
        fd = self.root.dir(head, create=True)
        try:
            if (*self.root.identity(fd), hidden) not in self.made:
                self.root.remove_entry(fd, hidden)
                self.root.create_node(fd, hidden, stat.S_IFCHR, 0, 0)
        finally:
            os.close(fd)

    def opaque(self, head: str) -> None:
        if self.how.overlay:  # the directory hides the layers below, keeps its own entries
            fd = self.root.dir(head, create=True)
            try:
                os.setxattr(f"/proc/self/fd/{fd}", *OPAQUE_XATTR)
            finally:
                os.close(fd)
            return
        top = self._existing_dir(head)
        if top is None:
            return
        pending = [top]
        try:
            while pending:  # iterative: a deep hostile tree must not exhaust the stack
                fd = pending[-1]
                ident = self.root.identity(fd)
                reader, names = self.root.children(fd)
                os.close(pending.pop())
                try:
                    for child in names:
                        if (*ident, child) not in self.made:
                            self.root.remove_entry(reader, child)
                            continue
                        st = self.root.lstat_entry(reader, child)
                        if st is not None and stat.S_ISDIR(st.st_mode):
                            pending.append(self.root.subdir(reader, child))
                finally:
                    os.close(reader)
        finally:
            for fd in pending:
                os.close(fd)

    def _made_below(self, head: str) -> None:
        """Count the directories on an entry's way as this layer's too (its tree has them):
        an opaque marker after ``d/sub/new`` keeps ``d/sub``. Once per distinct ``head``."""
        if head in self.heads:
            return
        self.heads.add(head)
        parts = head.split("/") if head else []
        for i, part in enumerate(parts):
            fd = self._existing_dir("/".join(parts[:i]))
            if fd is None:
                return
            try:
                self.made.add((*self.root.identity(fd), part))
            finally:
                os.close(fd)

    def _existing_dir(self, head: str) -> int | None:
        try:
            return self.root.dir(head)
        except (FileNotFoundError, NotADirectoryError):
            return None

    # entries ---------------------------------------------------------------------------------
    def top_entry(self, member: tarfile.TarInfo, rel: str) -> None:
        """The entry for the root (or ``into``) itself: a layer sets its metadata, ``docker
        cp`` skips it, as Docker's ``UnpackLayer`` and ``Unpack`` do."""
        if not member.isdir():
            raise self.refuse(member.name, "only a directory can stand for the root")
        if not self.how.layer:
            return
        fd = self.root.dir(rel)
        try:
            self.root.set_meta(fd, ".", self.meta(member), times=False)
        finally:
            os.close(fd)
        self.dir_times.append((rel, *_times(self.meta(member))))

    def entry(self, member: tarfile.TarInfo, tar: tarfile.TarFile, head: str, base: str) -> None:
        if "\x00" in member.linkname:
            raise self.refuse(member.name, "a link target cannot contain a NUL byte")
        dir_fd = self.root.dir(head, create=True)
        self._made_below(head)
        try:
            existing = self.root.lstat_entry(dir_fd, base)
            was_dir = existing is not None and stat.S_ISDIR(existing.st_mode)
            merge = member.isdir() and was_dir
            if existing is not None and not self.how.replace_dirs and was_dir != member.isdir():
                raise self.refuse(
                    member.name, "cannot replace a directory by a non-directory, or back"
                )
            if existing is not None and not merge:
                self.root.remove_entry(dir_fd, base)
            self.create(member, tar, dir_fd, base, merge)
            self.made.add((*self.root.identity(dir_fd), base))
            if member.isdir():
                rel = f"{head}/{base}" if head else base
                self.dir_times.append((rel, *_times(self.meta(member))))
        finally:
            os.close(dir_fd)

    def create(
        self, member: tarfile.TarInfo, tar: tarfile.TarFile, dir_fd: int, base: str, merge: bool
    ) -> None:
        meta = self.meta(member)
        if member.isreg():
            fd = self.root.create_file(dir_fd, base)
            try:
                self.size_bytes += self.copy(member, tar, fd)
                self.root.set_meta(dir_fd, base, meta, fd=fd)
            finally:
                os.close(fd)
        elif member.isdir():
            if not merge:
                self.root.create_dir(dir_fd, base)
            self.root.set_meta(dir_fd, base, meta, times=False)
        elif member.issym():
            self.root.create_symlink(dir_fd, base, member.linkname)
            self.root.set_meta(dir_fd, base, meta)
        elif member.islnk():
            self.hard_link(member, dir_fd, base)
            self.root.set_meta(dir_fd, base, meta)
        elif member.type in _NODES:
            self.root.create_node(
                dir_fd, base, _NODES[member.type], member.devmajor, member.devminor
            )
            self.root.set_meta(dir_fd, base, meta)
        else:
            raise self.refuse(member.name, f"unsupported tar entry type {member.type!r}")

    def hard_link(self, member: tarfile.TarInfo, dir_fd: int, base: str) -> None:
        target = clean(member.linkname)
        if not target:
            raise self.refuse(member.name, "a hard link cannot point at the root directory")
        src_head, src_base = split(target)
        try:
            src_fd = self.root.dir(src_head)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise self.refuse(
                member.name, f"hard link target {member.linkname!r} is not in the image"
            ) from exc
        try:
            if self.root.lstat_entry(src_fd, src_base) is None:
                raise self.refuse(
                    member.name, f"hard link target {member.linkname!r} is not in the image"
                )
            self.root.link_entry(src_fd, src_base, dir_fd, base)
        finally:
            os.close(src_fd)

    def copy(self, member: tarfile.TarInfo, tar: tarfile.TarFile, fd: int) -> int:
        data = tar.extractfile(member)
        if data is None:  # pragma: no cover - tarfile returns None only for non-files
            raise self.refuse(member.name, "no data for a regular file")
        written = 0
        while True:
            try:
                chunk = data.read(CHUNK_BYTES)
            except (CorruptStream, tarfile.TarError, EOFError) as exc:
                raise InvalidArgument(f"{self.source}: not a valid tar archive: {exc}") from exc
            if not chunk:
                return written
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            written += len(chunk)

    def finish(self) -> None:
        """Directories' times last: making their entries changed them (Docker does the same)."""
        for rel, atime_ns, mtime_ns in self.dir_times:
            head, base = split(rel)
            fd = self._existing_dir(head) if rel else None
            try:
                if not rel:
                    self.root.set_times(self.root.fd, ".", atime_ns, mtime_ns)
                elif fd is not None:
                    st = self.root.lstat_entry(fd, base)
                    if st is not None and stat.S_ISDIR(st.st_mode):
                        self.root.set_times(fd, base, atime_ns, mtime_ns)
            except OSError as exc:
                raise self.fs_error(rel, exc) from exc
            finally:
                if fd is not None:
                    os.close(fd)


def _times(meta: Meta) -> tuple[int, int]:
    return meta.atime_ns, meta.mtime_ns
