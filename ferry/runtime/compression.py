"""Reading a possibly compressed stream as plain bytes: what ``docker import``/``load`` and a
registry's layer media types allow — none, gzip, bzip2, xz, zstd — told apart by their magic
bytes (Docker's ``DecompressStream`` does the same).

Every read is bounded by the size asked for (the stdlib's file readers and zstandard's
``stream_reader`` decode on demand), so a small input that expands enormously costs time,
never memory. A corrupt stream raises ``CorruptStream``; a failure to read the source itself
is re-raised as ``SourceError`` (the disk's fault, not the archive's).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol, cast

import zstandard

from ferry.errors import InvalidArgument

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


class CorruptStream(InvalidArgument):
    """The data cannot be decompressed (truncated, wrong checksum, not what its magic says)."""


class SourceError(Exception):
    """Reading the underlying stream failed; carries the ``OSError``."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Source:
    """The caller's stream, with the bytes read to sniff the format put back in front."""

    def __init__(self, head: bytes, stream: Readable) -> None:
        self.head = head
        self.stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if self.head:
            if size < 0:
                out, self.head = self.head + self._read(-1), b""
                return out
            out, self.head = self.head[:size], self.head[size:]
            return out
        return self._read(size)

    def readable(self) -> bool:
        return True

    def _read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except OSError as exc:
            raise SourceError(exc) from exc


class _Checked:
    """A decoder whose every failure is a ``CorruptStream``."""

    def __init__(self, kind: str, decoder: Readable) -> None:
        self.kind = kind
        self.decoder = decoder

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self.decoder.read(size)
        except SourceError:
            raise
        except (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError) as exc:
            raise CorruptStream(f"corrupt {self.kind} data: {exc}") from exc


def compression_of(head: bytes) -> str | None:
    """``"gzip"``, ``"bzip2"``, ``"xz"``, ``"zstd"`` or None (plain) from a stream's first
    bytes (six are enough)."""
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


@contextmanager
def decompressed(stream: Readable) -> Iterator[Readable]:
    """``stream`` as plain bytes, whatever of the supported compressions it uses."""
    head = b""
    while len(head) < 6:
        try:
            more = stream.read(6 - len(head))
        except OSError as exc:
            raise SourceError(exc) from exc
        if not more:
            break
        head += more
    source = _Source(head, stream)
    kind = compression_of(head)
    if kind is None:
        yield source
        return
    with _DECODERS[kind](cast(IO[bytes], source)) as decoder:
        yield _Checked(kind, decoder)


_DECODERS: dict[str, Callable[[IO[bytes]], Any]] = {
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "bzip2": bz2.BZ2File,
    "xz": lzma.LZMAFile,
    "zstd": lambda raw: zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True),
}
