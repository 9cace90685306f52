"""Issue 11's acceptance, next to the tutorials (see test_tutorials.py): a service whose image
only the lab's registry has converges on every node, each pulling it by the digest the manager
pinned.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.lablib import LabRig
from tests.integration.tutorialslib import cleanup, run, tutorial_swarm, wait_running


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with tutorial_swarm() as rig:
        yield rig


def test_a_service_whose_image_is_only_in_the_registry_converges_on_every_node(
    lab: LabRig,
) -> None:
    # not a tutorial step: issue 11's acceptance. A global service puts one task on each of
    # the three nodes; no node has the image until its task pulls it, by the digest the
    # manager pinned (so, as with Docker, the nodes hold it by digest, not by tag).
    image = "ferrylab/tools:latest"
    for host in ("h1", "h2", "h3"):
        assert lab.exec(host, "docker", "image", "inspect", image, check=False).returncode != 0
    try:
        run(
            lab, "h1", f"docker service create -d --mode global --name everywhere {image} sleep 600"
        )
        pinned = run(
            lab,
            "h1",
            "docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' everywhere",
        ).strip()
        assert pinned.startswith(f"{image}@sha256:"), pinned
        by_digest = "ferrylab/tools@" + pinned.split("@", 1)[1]
        assert sorted(wait_running(lab, "everywhere", 3)) == ["h1", "h2", "h3"]
        for host in ("h1", "h2", "h3"):
            digests = run(lab, host, f"docker image inspect -f '{{{{.RepoDigests}}}}' {by_digest}")
            assert by_digest.split("@", 1)[1] in digests
    finally:
        cleanup(lab, ("h1", "docker service rm everywhere"))
