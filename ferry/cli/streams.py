"""Reading Docker's multiplexed streams (8-byte frame headers) on the client side."""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator


def frames(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= 8:
            stream, size = struct.unpack(">BxxxL", buffer[:8])
            if len(buffer) < 8 + size:
                break
            yield stream, buffer[8 : 8 + size]
            buffer = buffer[8 + size :]


def write_frame(stream: int, data: bytes) -> None:
    target = sys.stderr.buffer if stream == 2 else sys.stdout.buffer
    target.write(data)
    target.flush()


def socket_chunks(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, 65536):
        yield chunk
