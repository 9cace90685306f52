"""The five tutorials (/work/shared/seeds) as written, through the real docker CLI on the lab's
hosts (``ferry lab exec HOST -- docker …``), with the images of the lab's registry: each host
pulls an image the first time it needs one.

Where a command cannot be typed as written in a lab, the test says what changed: addresses are
the lab's; the MACVLAN LAN is the lab's underlay; a ``ping`` that runs forever is stopped after
a few replies; ``docker exec -it … sh`` becomes the command one types in that shell.

Needs: ``ferry lab images`` (make test runs it); pull on run/create and on a service's task
(STORE), the image's Cmd/Entrypoint/Env honoured (CONFIG).

Seeds 000, 001 and 004 here; seeds 002 and 003 in test_tutorials_services.py, and a service
whose image only the lab's registry has in test_tutorials_registry.py (each module its own
lab, so the workers run them side by side).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.lablib import LabRig
from tests.integration.tutorialslib import (
    NGINX_PAGE,
    bounded,
    cleanup,
    curl,
    run,
    tutorial_swarm,
    wait_running,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with tutorial_swarm() as rig:
        yield rig


def test_seed_000_alpine_containers_on_an_attachable_overlay_ping_each_other(
    lab: LabRig,
) -> None:
    try:
        run(lab, "h1", "docker network create -d overlay --attachable my_overlay")
        run(lab, "h2", "docker run -d --network my_overlay --name app1 alpine sleep 3600")
        run(lab, "h3", "docker run -d --network my_overlay --name app2 alpine sleep 3600")
        assert "bytes from" in bounded(lab, "h2", "docker exec app1 ping app2", 4)
    finally:
        cleanup(
            lab,
            ("h2", "docker rm -f app1"),
            ("h3", "docker rm -f app2"),
            ("h1", "docker network rm my_overlay"),
        )


def test_seed_000_nginx_on_macvlan_answers_at_its_own_lan_address(lab: LabRig) -> None:
    # the tutorial's LAN is 192.168.1.0/24 with parent eth0; the lab's LAN is its underlay
    subnet = lab.topo.subnet
    base = subnet.rsplit(".", 1)[0]
    try:
        run(
            lab,
            "h1",
            f"""docker network create -d macvlan \\
  --subnet={subnet} \\
  --gateway={base}.1 \\
  -o parent=eth0 \\
  my_macvlan""",
        )
        run(
            lab,
            "h1",
            f"""docker run -d \\
  --name web-macvlan \\
  --network my_macvlan \\
  --ip {base}.100 \\
  nginx""",
        )
        assert NGINX_PAGE in curl(lab, f"http://{base}.100/")
    finally:
        cleanup(lab, ("h1", "docker rm -f web-macvlan"), ("h1", "docker network rm my_macvlan"))


def test_seed_001_nginx_answers_on_every_node_and_by_name_on_the_overlay(lab: LabRig) -> None:
    try:
        run(
            lab,
            "h1",
            """docker network create \\
  --driver overlay \\
  --attachable \\
  my_overlay_network""",
        )
        assert "my_overlay_network" in run(lab, "h1", "docker network ls")
        run(
            lab,
            "h1",
            """docker service create \\
  --name nginx-service \\
  --network my_overlay_network \\
  -p 8080:80 \\
  nginx""",
        )
        wait_running(lab, "nginx-service", 1)
        for host in lab.topo.hosts:
            assert NGINX_PAGE in curl(lab, f"http://{host.addr}:8080/"), host.name
        run(
            lab,
            "h2",
            """docker run -d \\
  --name nginx-container \\
  --network my_overlay_network \\
  -p 8081:80 \\
  nginx""",
        )
        assert NGINX_PAGE in curl(lab, f"http://{lab.topo.node('h2').addr}:8081/")
        # `docker exec -it <container_id> sh`, then in that shell `ping <other_container_name>`
        # and `curl http://nginx-service:80`: the same commands, in a container on the network
        run(lab, "h3", "docker run -d --name shell --network my_overlay_network alpine sleep 3600")
        assert "bytes from" in bounded(lab, "h3", "docker exec shell ping nginx-container", 4)
        assert NGINX_PAGE in run(lab, "h3", "docker exec shell curl http://nginx-service:80")
        assert '"Subnet"' in run(lab, "h1", "docker network inspect my_overlay_network")
    finally:
        cleanup(
            lab,
            ("h3", "docker rm -f shell"),
            ("h2", "docker rm -f nginx-container"),
            ("h1", "docker service rm nginx-service"),
            ("h1", "docker network rm my_overlay_network"),
        )


def test_seed_004_web_scales_across_the_nodes_of_the_overlay(lab: LabRig) -> None:
    try:
        run(lab, "h1", "docker network create -d overlay myoverlay")
        run(lab, "h1", "docker service create --name web --network myoverlay nginx")
        wait_running(lab, "web", 1)
        run(lab, "h1", "docker service scale web=3")
        assert sorted(wait_running(lab, "web", 3)) == ["h1", "h2", "h3"]
        assert "myoverlay" in run(lab, "h1", "docker network inspect myoverlay")
    finally:
        cleanup(lab, ("h1", "docker service rm web"), ("h1", "docker network rm myoverlay"))
