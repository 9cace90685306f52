"""Integration tests need root and a real kernel. Locally they skip without root; under CI
(FERRY_CI=1, set by .ci/run) a missing capability is a failure, never a skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.integration.lablib import LabRig, new_lab

REQUIRED_TOOLS = ("etcd", "nft", "ip", "bridge", "nsenter", "unshare")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (run make test, which installs them)"
    return None


@pytest.fixture(autouse=True, scope="session")
def _capabilities() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("FERRY_CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def swarm_lab() -> Iterator[LabRig]:
    """A 3-host lab with a swarm: h1 manager, h2 and h3 workers."""
    with new_lab(hosts=3) as lab:
        lab.form_swarm()
        yield lab
