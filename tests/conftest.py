"""The suite's order: ``make test`` runs modules side by side (pytest-xdist, ``--dist
loadfile``: each module on one worker, in collection order), so the longest modules go first
and the short ones fill the gaps; otherwise the run ends waiting for one long module.

With FERRY_SUITE_TIMES=FILE each test's worker, start and end (seconds since the epoch) are
appended to FILE as JSON lines: the run's timeline, worker by worker (its critical path)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

# The longest modules, longest first (each module's setup, calls and teardown summed from a
# whole run's JUnit report, ``--junitxml``; FERRY_SUITE_TIMES shows each worker's timeline);
# the rest (unit tests, the shortest modules) follow in their usual order and fill the gaps.
LONGEST_FIRST = (
    "tests/integration/test_tutorials_services.py",
    "tests/integration/test_api_fuzz.py",
    "tests/integration/test_services_docker_cli.py",
    "tests/integration/test_registry.py",
    "tests/integration/test_faults_restarts.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_overlay.py",
    "tests/integration/test_container_verbs.py",
    "tests/integration/test_trust_upgrade.py",
    "tests/integration/test_tutorials.py",
    "tests/integration/test_trust_upgrade_managers.py",
    "tests/integration/test_local_networks.py",
    "tests/integration/test_services.py",
    "tests/integration/test_managers.py",
    "tests/integration/test_ca_rotation.py",
    "tests/integration/test_mesh.py",
    "tests/integration/test_stack.py",
    "tests/integration/test_isolation.py",
    "tests/integration/test_data_path_port.py",
    "tests/integration/test_faults_hosts.py",
    "tests/integration/test_runtime.py",
    "tests/integration/test_api_refusals.py",
    "tests/integration/test_trust_autolock.py",
    "tests/integration/test_worker_view.py",
    "tests/integration/test_encryption.py",
    "tests/integration/test_failover.py",
    "tests/integration/test_egress_pools.py",
    "tests/integration/test_cluster.py",
    "tests/integration/test_lab_down.py",
    "tests/integration/test_images.py",
    "tests/integration/test_daemon_config.py",
    "tests/integration/test_tutorials_registry.py",
    "tests/integration/test_docker_py.py",
    "tests/integration/test_trust.py",
    "tests/integration/test_runtime_streams.py",
    "tests/test_lint.py",
    "tests/integration/test_lab_registry.py",
    "tests/integration/test_default_networks.py",
    "tests/integration/test_service_options.py",
)


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: each module keeps its own order


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist (3.5 on) hands out modules by their number of tests, most first, unless
    # told not to: a module of two long tests then starts last and the run waits for it
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    target = os.environ.get("FERRY_SUITE_TIMES")
    started = time.time()
    try:
        return (yield)
    finally:
        if target:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            line = {"test": item.nodeid, "worker": worker, "start": started, "end": time.time()}
            with open(target, "a") as out:
                out.write(json.dumps(line) + "\n")
