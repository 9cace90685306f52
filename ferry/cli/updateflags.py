"""``--update-*`` and ``--rollback-*`` (service create and update): how tasks roll over,
written into UpdateConfig and RollbackConfig as the docker CLI writes them (durations in
nanoseconds; on update, only the flags given change)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any

import typer

NS = 1_000_000_000


@dataclass
class RollFlags:
    parallelism: int | None = None
    delay: str | None = None
    failure_action: str | None = None
    monitor: str | None = None
    max_failure_ratio: float | None = None
    order: str | None = None

    def given(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def apply(flags: RollFlags, config: dict[str, Any], parse_duration: Any) -> dict[str, Any]:
    """``config`` (an UpdateConfig or RollbackConfig) changed as the flags ask."""
    out = dict(config)
    if flags.parallelism is not None:
        out["Parallelism"] = flags.parallelism
    if flags.delay is not None:
        out["Delay"] = round(parse_duration(flags.delay) * NS)
    if flags.failure_action is not None:
        out["FailureAction"] = flags.failure_action
    if flags.monitor is not None:
        out["Monitor"] = round(parse_duration(flags.monitor) * NS)
    if flags.max_failure_ratio is not None:
        out["MaxFailureRatio"] = flags.max_failure_ratio
    if flags.order is not None:
        out["Order"] = flags.order
    return out


# the flags' types, shared by create and update (typer names each from its parameter)
Parallelism = Annotated[
    int | None, typer.Option(help="Tasks replaced at once (0: all)", show_default=False)
]
Delay = Annotated[str | None, typer.Option(help="Wait between batches (ms|s|m|h)")]
Action = Annotated[str | None, typer.Option(help="On failure: pause, continue or rollback")]
Monitor = Annotated[str | None, typer.Option(help="How long a new task's failure counts")]
Ratio = Annotated[float | None, typer.Option(help="Share of failed tasks tolerated (0 to 1)")]
Order = Annotated[str | None, typer.Option(help="stop-first or start-first")]
