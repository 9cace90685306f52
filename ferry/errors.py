"""The error kinds every Ferry layer raises, and nothing else.

Each kind maps to one HTTP status at the API boundary and one exit code in the CLI, so a caller
decides what to do from the kind alone. Domain errors subclass a kind (``SubnetOverlap`` is an
``InvalidArgument``). Translate foreign exceptions once, where they enter, with ``raise … from``.
"""

from __future__ import annotations


class FerryError(Exception):
    """Base of every error Ferry raises on purpose."""

    http_status = 500
    exit_code = 1


class InvalidArgument(FerryError):
    http_status = 400
    exit_code = 2


class NotFound(FerryError):
    http_status = 404
    exit_code = 3


class Conflict(FerryError):
    http_status = 409
    exit_code = 4


class Forbidden(FerryError):
    http_status = 403
    exit_code = 5


class Unavailable(FerryError):
    http_status = 503
    exit_code = 6


class Internal(FerryError):
    http_status = 500


class NotServed(FerryError):
    """A part of Docker's API Ferry deliberately does not serve (image builds, plugins, …):
    Docker's "not implemented" kind (moby ``errdefs.NotImplemented`` → 501), naming it."""

    http_status = 501
    exit_code = 2


class NotInSwarm(Unavailable):
    """A swarm call on a node in no swarm, in Docker's words (moby ``Cluster.errNoManager``):
    whichever CLI asked, ``swarm init`` and ``swarm join`` are the same verbs in both."""

    def __init__(self) -> None:
        super().__init__(
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
            "to connect this node to swarm and try again."
        )


class NoLeader(Unavailable):
    """A manager whose store has no quorum: what it holds may be stale (Docker's words)."""

    def __init__(self) -> None:
        super().__init__(
            "The swarm does not have a leader. It's possible that too few managers are online. "
            "Make sure more than half of the managers are online."
        )


class NotManager(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "This node is not a swarm manager. Worker nodes can't be used to view or modify "
            "cluster state. Run this command on a manager node or promote the current node to a "
            "manager."
        )


class SubnetOverlap(InvalidArgument):
    pass


class PoolExhausted(Unavailable):
    pass


class KernelError(FerryError):
    """A kernel operation failed: names the operation, the object and the errno."""

    def __init__(self, operation: str, obj: str, errno: int | None, detail: str = "") -> None:
        self.operation = operation
        self.obj = obj
        self.errno = errno
        text = f"{operation} {obj} failed"
        if errno is not None:
            text += f" (errno {errno})"
        if detail:
            text += f": {detail}"
        super().__init__(text)


def from_status(status: int, message: str) -> FerryError:
    """Rebuild an error kind from an HTTP status (client side of the API boundary)."""
    for cls in (InvalidArgument, NotFound, Conflict, Forbidden, Unavailable, NotServed):
        if cls.http_status == status:
            return cls(message)
    return Internal(message)


class SwarmLocked(Unavailable):
    """A manager restarted in an autolocked swarm holds no key until ``swarm unlock``."""

    def __init__(self) -> None:
        super().__init__(
            "Swarm is encrypted and needs to be unlocked before it can be used. Please use "
            '"docker swarm unlock" to unlock it.'
        )
