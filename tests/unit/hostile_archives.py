"""A corpus of hostile (and merely odd) layer archives, built in code, each with its answer.

Every case is a list of layers applied in order to an empty root. Names and link targets may
hold ``{S}``: the absolute path of a *sentinel* directory outside the root, which the test
fills with files beforehand and checks, byte for byte, afterwards. ``{R}`` is the same
directory reached from the root with ``..``. The answer is either ``refused`` (a pattern the
``InvalidArgument`` must match: the archive is refused, naming the entry) or ``inside``: what
the root must then hold, path by path (the hostile entry neutralised, as Docker does).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field

from ferry.runtime.compression import decompressed

SENTINEL_FILES = {"precious": b"keep me", "etc/shadow": b"host secret", "dir/inner": b"inner"}


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str = "file"  # file dir symlink hardlink char block fifo
    data: bytes = b""
    link: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    dev: tuple[int, int] = (0, 0)
    pax: tuple[tuple[str, str], ...] = ()


def file(name: str, data: bytes = b"x", mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(name, "file", data, mode=mode, uid=uid, gid=gid)


def directory(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, "dir", mode=mode)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", link=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", link=target)


@dataclass(frozen=True)
class Want:
    """What one path of the root must be: ``kind`` None means it must not exist."""

    kind: str | None = "file"
    data: bytes | None = None
    link: str | None = None
    mode: int | None = None  # permission bits incl. setuid/setgid/sticky
    owner: tuple[int, int] | None = None
    dev: tuple[int, int] | None = None
    same_inode_as: str | None = None
    xattrs: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Case:
    name: str  # reads as a sentence: the test id
    layers: tuple[tuple[Entry, ...], ...]
    refused: str | None = None
    inside: dict[str, Want] = field(default_factory=dict)


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def layer_tar(entries: tuple[Entry, ...], S: str, R: str) -> bytes:
    """The entries as one uncompressed PAX tar, placeholders filled in."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name.format(S=S, R=R))
            info.type = _TYPES[e.kind]
            info.linkname = e.link.format(S=S, R=R)
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, 1_600_000_000
            info.devmajor, info.devminor = e.dev
            info.pax_headers = dict(e.pax)
            info.size = len(e.data) if e.kind == "file" else 0
            tar.addfile(info, io.BytesIO(e.data) if e.kind == "file" else None)
    return out.getvalue()


def saved_image(layers: list[bytes], order: list[int] | None = None) -> bytes:
    """A ``docker save`` archive: the layers stored as given, the manifest listing them in
    ``order`` (indices), by default the stored order, and a config whose DiffIDs are theirs."""
    names = [f"{i:064x}/layer.tar" for i in range(len(layers))]
    indices = list(order if order is not None else range(len(layers)))
    listed = [names[i] for i in indices]
    diff_ids = [_diff_id(layers[i]) for i in indices]
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}  # fmt: skip
    members = [*zip(names, layers, strict=True), ("c.json", json.dumps(config).encode()),
               ("manifest.json", _manifest(listed))]  # fmt: skip
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _diff_id(layer: bytes) -> str:
    """The sha256 of a layer's uncompressed bytes (whatever it is compressed with)."""
    with decompressed(io.BytesIO(layer)) as plain:
        return "sha256:" + hashlib.sha256(plain.read()).hexdigest()


def _manifest(layers: list[str]) -> bytes:
    image = {"Config": "c.json", "RepoTags": ["evil:latest"], "Layers": layers}
    return json.dumps([image]).encode()


L = tuple  # a layer, for readability below
OUT = "{S}"  # the sentinel, absolute
LONG = "n" * 255
# vfs_cap_data v2: cap_net_raw (bit 13) permitted and effective
CAP_NET_RAW = bytes([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00]) + bytes(12)

CASES: list[Case] = [
    Case(
        "a file through a symlink to a host directory planted by an earlier layer is refused",
        (L([symlink("escape", OUT)]), L([file("escape/pwned")])),
        refused="'escape/pwned'",
    ),
    Case(
        "a file through a symlink to a host directory in the same layer is refused",
        (L([symlink("escape", OUT), file("escape/pwned")]),),
        refused="'escape/pwned'",
    ),
    Case(
        "a file through a symlink to a directory the image also has lands in the image's copy",
        (L([directory("{S}"), symlink("escape", OUT)]), L([file("escape/pwned", b"in")])),
        inside={"{S}/pwned": Want("file", b"in"), "escape": Want("symlink", link=OUT)},
    ),
    Case(
        "a symlink to / then a directory through it lands at the image's root",
        (L([symlink("up", "/")]), L([directory("up/newdir"), file("up/newdir/f", b"f")])),
        inside={"newdir/f": Want("file", b"f"), "up": Want("symlink", link="/")},
    ),
    Case(
        "a symlink to ../../.. resolves at the image's root",
        (L([symlink("up", "../../../../../..")]), L([file("up/etc/passwd", b"root::0:0")])),
        inside={"etc/passwd": Want("file", b"root::0:0")},
    ),
    Case(
        "a hard link to /etc/shadow is refused when the image has none",
        (L([hardlink("shadow", "/etc/shadow")]),),
        refused="'shadow'.*hard link target '/etc/shadow' is not in the image",
    ),
    Case(
        "a hard link to /etc/shadow links the image's own file",
        (L([file("etc/shadow", b"image secret")]), L([hardlink("copy", "/etc/shadow")])),
        inside={"copy": Want("file", b"image secret", same_inode_as="etc/shadow")},
    ),
    Case(
        "a hard link to ../ outside the root means the image's file",
        (L([file("precious", b"image's")]), L([hardlink("copy", "{R}/../../precious")])),
        inside={"copy": Want("file", b"image's", same_inode_as="precious")},
    ),
    Case(
        "a hard link through a symlink to the host is refused",
        (L([symlink("hostdir", OUT)]), L([hardlink("stolen", "hostdir/precious")])),
        refused="'stolen'.*is not in the image",
    ),
    Case(
        "a hard link to a symlink links the symlink, not its target",
        (L([symlink("ln", "{S}/precious"), hardlink("twin", "ln")]),),
        inside={"twin": Want("symlink", link="{S}/precious", same_inode_as="ln")},
    ),
    Case(
        "a hard link to a directory is refused",
        (L([directory("d"), hardlink("dl", "d")]),),
        refused="'dl'",
    ),
    Case(
        "../ names are neutralised into the root",
        (L([file("{R}/pwned", b"a"), file("../../../../../../../top", b"b")]),),
        inside={"sentinel/pwned": Want("file", b"a"), "top": Want("file", b"b")},
    ),
    Case(
        "absolute names are neutralised into the root",
        (L([file("{S}/abs", b"abs"), file("/etc/hostname", b"h")]),),
        inside={"{S}/abs": Want("file", b"abs"), "etc/hostname": Want("file", b"h")},
    ),
    Case(
        "a whiteout through a symlink to the host removes nothing",
        (L([symlink("escape", OUT)]), L([file("escape/.wh.precious", b"")])),
        inside={"escape": Want("symlink", link=OUT)},
    ),
    Case(
        "an opaque whiteout through a symlink to the host removes nothing",
        (L([symlink("escape", OUT)]), L([file("escape/.wh..wh..opq", b"")])),
        inside={"escape": Want("symlink", link=OUT)},
    ),
    Case(
        "a whiteout of .. is refused",
        (L([directory("a"), file("a/.wh...", b"")]),),
        refused="'a/.wh...': a whiteout must name one entry",
    ),
    Case(
        "AUFS metadata names are refused",
        (L([file(".wh..wh.plnk/123.456", b"")]),),
        refused="AUFS metadata",
    ),
    Case(
        "device nodes and fifos are made as Docker makes them as root",
        (
            L(
                [
                    directory("dev"),
                    Entry("dev/null", "char", mode=0o666, dev=(1, 3)),
                    Entry("dev/loop0", "block", mode=0o660, gid=6, dev=(7, 0)),
                    Entry("run/fifo", "fifo", mode=0o600),
                ]
            ),
        ),
        inside={
            "dev/null": Want("char", mode=0o666, dev=(1, 3)),
            "dev/loop0": Want("block", mode=0o660, owner=(0, 6), dev=(7, 0)),
            "run/fifo": Want("fifo", mode=0o600),
            "run": Want("dir", mode=0o755, owner=(0, 0)),
        },
    ),
    Case(
        "setuid and setgid bits survive the change of owner",
        (
            L(
                [
                    file("bin/su", b"su", mode=0o4755),
                    file("bin/wall", b"wall", mode=0o2755, uid=0, gid=5),
                    file("home/u/tool", b"t", mode=0o6750, uid=1000, gid=1000),
                ]
            ),
        ),
        inside={
            "bin/su": Want("file", b"su", mode=0o4755, owner=(0, 0)),
            "bin/wall": Want("file", b"wall", mode=0o2755, owner=(0, 5)),
            "home/u/tool": Want("file", b"t", mode=0o6750, owner=(1000, 1000)),
        },
    ),
    Case(
        "a symlink chain ending outside the root is refused for a file through it",
        (L([symlink("a", "b"), symlink("b", "c"), symlink("c", OUT)]), L([file("a/pwned")])),
        refused="'a/pwned'",
    ),
    Case(
        "a symlink chain ending at / resolves at the image's root",
        (L([symlink("a", "b"), symlink("b", "/")]), L([file("a/x", b"x")])),
        inside={"x": Want("file", b"x")},
    ),
    Case(
        "a symlink loop is refused",
        (L([symlink("a", "b"), symlink("b", "a")]), L([file("a/x")])),
        refused="'a/x'",
    ),
    Case(
        "a file replacing a symlink replaces the link, not its target",
        (L([symlink("target", "{S}/precious")]), L([file("target", b"new")])),
        inside={"target": Want("file", b"new")},
    ),
    Case(
        "a directory replacing a file",
        (L([file("x", b"old")]), L([directory("x"), file("x/y", b"y")])),
        inside={"x": Want("dir"), "x/y": Want("file", b"y")},
    ),
    Case(
        "a file replacing a directory removes the directory's tree",
        (L([directory("d"), file("d/f")]), L([file("d", b"now a file")])),
        inside={"d": Want("file", b"now a file")},
    ),
    Case(
        "a directory replacing a symlink to a host directory replaces the link",
        (L([symlink("etc", OUT)]), L([directory("etc", 0o700), file("etc/x", b"x")])),
        inside={"etc": Want("dir", mode=0o700), "etc/x": Want("file", b"x")},
    ),
    Case(
        "a name of 255 bytes and a path of 3000 are kept",
        (L([file(f"{LONG}/{LONG[:200]}/" + "/".join(["d" * 100] * 25) + "/f", b"deep")]),),
        inside={f"{LONG}/{LONG[:200]}/" + "/".join(["d" * 100] * 25) + "/f": Want("file", b"deep")},
    ),
    Case(
        "a name longer than 255 bytes is refused",
        (L([file(LONG + "x")]),),
        refused="File name too long",
    ),
    Case(
        "a path longer than PATH_MAX is refused",
        (L([file("/".join(["d" * 200] * 25) + "/f")]),),
        refused="File name too long",
    ),
    Case(
        "a tree 1500 directories deep unpacks, and an opaque marker above removes it",
        (L([file("top/" + "a/" * 1500 + "f", b"deep")]), L([file("top/.wh..wh..opq")])),
        inside={"top": Want("dir"), "top/a": Want(None)},
    ),
    Case(
        "names with newlines are kept as they are",
        (L([file("etc/new\nline", b"nl")]),),
        inside={"etc/new\nline": Want("file", b"nl")},
    ),
    Case(
        "a name with a NUL byte is refused",
        (L([Entry("short", pax=(("path", "evil\x00/etc/passwd"),))]),),
        refused="NUL",
    ),
    Case(
        "a later duplicate entry wins",
        (L([file("dup", b"first"), file("dup", b"second", mode=0o600)]),),
        inside={"dup": Want("file", b"second", mode=0o600)},
    ),
    Case(
        "a duplicate directory is merged, with the later metadata",
        (L([directory("d", 0o755), file("d/keep", b"k"), directory("d", 0o711)]),),
        inside={"d": Want("dir", mode=0o711), "d/keep": Want("file", b"k")},
    ),
    Case(
        "a whiteout hides lower layers only, not its own layer's entry",
        (L([file("old", b"o")]), L([file("new", b"n"), file(".wh.new"), file(".wh.old")])),
        inside={"old": Want(None), "new": Want("file", b"n")},
    ),
    Case(
        "an opaque directory keeps this layer's entries and drops everything lower",
        (
            L([file("d/old"), file("d/sub/old")]),
            L(
                [
                    directory("d"),
                    directory("d/sub"),
                    file("d/sub/new", b"n"),
                    file("d/.wh..wh..opq"),
                ]
            ),
        ),
        inside={"d/old": Want(None), "d/sub/old": Want(None), "d/sub/new": Want("file", b"n")},
    ),
    Case(
        "an opaque marker after a file keeps the directories on that file's way",
        (
            L([file("d/old"), file("d/sub/old"), file("d/sub/deeper/old")]),
            L([file("d/sub/deeper/new", b"n"), file("d/.wh..wh..opq")]),
        ),
        inside={
            "d/old": Want(None),
            "d/sub/old": Want(None),
            "d/sub/deeper/old": Want(None),
            "d/sub/deeper/new": Want("file", b"n"),
        },
    ),
    Case(
        "file capabilities and user xattrs are kept, after the change of owner",
        (
            L(
                [
                    Entry(
                        "bin/ping",
                        data=b"elf",
                        mode=0o755,
                        uid=0,
                        gid=0,
                        pax=(
                            ("SCHILY.xattr.security.capability", CAP_NET_RAW.decode("latin-1")),
                            ("SCHILY.xattr.user.origin", "layer"),
                        ),
                    ),
                    Entry(
                        "lnk", "symlink", link="bin/ping", pax=(("SCHILY.xattr.trusted.x", "1"),)
                    ),
                ]
            ),
        ),
        inside={
            "bin/ping": Want("file", b"elf", xattrs=(("security.capability", CAP_NET_RAW),)),
            "lnk": Want("symlink", link="bin/ping", xattrs=(("trusted.x", b"1"),)),
        },
    ),
    Case(
        "an overlay xattr is refused",
        (L([Entry("f", pax=(("SCHILY.xattr.trusted.overlay.redirect", "/etc"),))]),),
        refused="trusted.overlay.redirect",
    ),
    Case(
        "the root entry must be a directory",
        (L([file("./", b"not a dir")]),),
        refused="only a directory can stand for the root",
    ),
    Case(
        "a symlink's target is stored verbatim and never followed",
        (L([symlink("etc/passwd", "{S}/precious"), symlink("rel", "../../../../{R}/precious")]),),
        inside={
            "etc/passwd": Want("symlink", link="{S}/precious"),
            "rel": Want("symlink", link="../../../../{R}/precious"),
        },
    ),
]
