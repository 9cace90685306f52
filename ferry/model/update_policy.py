"""How a service's tasks roll over to a new spec, and back: Docker's UpdateConfig and
RollbackConfig (swarmkit ``api.UpdateConfig``), and swarmkit's checks of them.

- ``parallelism``: tasks replaced at once (0: all of them in one batch);
- ``delay_s``: the wait between two batches, once a batch's new tasks run;
- ``order``: ``stop-first`` stops an old task before its replacement starts; ``start-first``
  starts the replacement beside it and stops the old one once the new one runs;
- ``monitor_s``: how long after it starts a new task's failure counts against the update;
- ``max_failure_ratio``: the share of failed new tasks tolerated (0: none);
- ``failure_action``: beyond it, ``pause`` the update, ``continue``, or ``rollback`` to the
  previous spec (an update only: a rollback cannot roll back).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from ferry.errors import InvalidArgument

E = TypeVar("E", bound=StrEnum)


class FailureAction(StrEnum):
    PAUSE = "pause"
    CONTINUE = "continue"
    ROLLBACK = "rollback"


class UpdateOrder(StrEnum):
    STOP_FIRST = "stop-first"
    START_FIRST = "start-first"


@dataclass(frozen=True)
class UpdatePolicy:
    parallelism: int = 1
    delay_s: float = 0.0
    failure_action: FailureAction = FailureAction.PAUSE
    monitor_s: float = 5.0
    max_failure_ratio: float = 0.0
    order: UpdateOrder = UpdateOrder.STOP_FIRST

    def check(self, rollback: bool = False) -> None:
        """swarmkit's ``validateUpdate`` (and the daemon's conversion), in their words;
        InvalidArgument."""
        flag = "rollback" if rollback else "update"
        if self.parallelism < 0:
            raise InvalidArgument(f"TaskSpec: {flag}-parallelism cannot be negative")
        if self.delay_s < 0:
            raise InvalidArgument(f"TaskSpec: {flag}-delay cannot be negative")
        if self.monitor_s < 0:
            raise InvalidArgument(f"TaskSpec: {flag}-monitor cannot be negative")
        if not 0 <= self.max_failure_ratio <= 1:
            raise InvalidArgument(
                f"TaskSpec: {flag}-maxfailureratio cannot be less than 0 or bigger than 1"
            )
        if rollback and self.failure_action == FailureAction.ROLLBACK:
            raise InvalidArgument("unrecognized rollback failure action rollback")


def failure_action(text: str, rollback: bool = False) -> FailureAction:
    """Docker's spelling (empty: pause); InvalidArgument in the daemon's words otherwise
    ("unrecognized update failure action X")."""
    return _parse(FailureAction, text or FailureAction.PAUSE.value, rollback, "failure action")


def update_order(text: str, rollback: bool = False) -> UpdateOrder:
    """Docker's spelling (empty: stop-first); "unrecognized update order X" otherwise."""
    return _parse(UpdateOrder, text or UpdateOrder.STOP_FIRST.value, rollback, "order")


def _parse(enum: type[E], text: str, rollback: bool, what: str) -> E:
    try:
        return enum(text)
    except ValueError as exc:
        kind = "rollback" if rollback else "update"
        raise InvalidArgument(f"unrecognized {kind} {what} {text}") from exc
