"""The suite's order: ``make test`` runs modules side by side (pytest-xdist, ``--dist
loadfile``: each module on one worker, in collection order), so the longest modules go first
and the short ones fill the gaps; otherwise the run ends waiting for one long module."""

from __future__ import annotations

import pytest

# The longest modules, longest first (measured with ``pytest --durations``); the rest follow
# in their usual order.
LONGEST_FIRST = (
    "tests/integration/test_faults_restarts.py",
    "tests/integration/test_faults_hosts.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_tutorials.py",
    "tests/integration/test_trust.py",
    "tests/integration/test_api_fuzz.py",
    "tests/test_lint.py",
)


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: each module keeps its own order
