"""An exclusive advisory lock on a file (``flock(2)``), held for a ``with`` block.

Used where several processes on the machine may build into one shared cache at once (two labs
or test runs filling ``/var/cache/ferry``): the second waits for the first, then finds its work
done. The lock goes with the process, so a crash never leaves it held.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on ``path`` (created if missing) for the block; blocks until
    any other holder lets go."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
