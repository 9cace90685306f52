"""A manager's requests to one node: the logs of some of its tasks, an examination."""

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


@dataclass(frozen=True)
class DoctorRequest:
    """Examine yourself (``ferry doctor --all``) and send the findings to ``manager``."""

    req_id: str
    node_id: str
    manager: str  # HOST:PORT
