"""A manager's request for the logs of some tasks on one node."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LogRequest:
    req_id: str
    node_id: str
    task_ids: tuple[str, ...]
    tail: int  # lines per task from the end; -1: all
    follow: bool
    manager: str  # the manager (HOST:PORT) to send them to
