"""The five tutorials (/work/shared/seeds) as written, through the real docker CLI on the lab's
hosts (``ferry lab exec HOST -- docker …``), with the images of the lab's registry: each host
pulls an image the first time it needs one.

Where a command cannot be typed as written in a lab, the test says what changed: addresses are
the lab's; the MACVLAN LAN is the lab's underlay; a ``ping`` that runs forever is stopped after
a few replies; ``docker exec -it … sh`` becomes the command one types in that shell.

Needs: ``ferry lab images`` (make test runs it); pull on run/create and on a service's task
(STORE), the image's Cmd/Entrypoint/Env honoured (CONFIG).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest

from ferry.lab import images
from tests.integration.lablib import LabRig, new_lab, running, wait_until

NGINX_PAGE = "Welcome to nginx!"
CONVERGE_S = 180.0  # a first task pulls its image; mysql initialises its database


def seed(text: str) -> list[str]:
    """A tutorial's command as a shell splits it (its line continuations joined)."""
    return shlex.split(text.replace("\\\n", " "))


def run(lab: LabRig, host: str, text: str, timeout_s: float = 300) -> str:
    """Run a tutorial command on a lab host; its standard output, or fail with its error."""
    result = lab.exec(host, *seed(text), check=False, timeout_s=timeout_s)
    assert result.returncode == 0, f"{text!r} on {host}: {result.stderr or result.stdout}"
    return result.stdout


def bounded(lab: LabRig, host: str, text: str, seconds: int) -> str:
    """A command that runs until stopped (``ping``), stopped after ``seconds``; its output."""
    argv = ["timeout", "-s", "INT", str(seconds), *seed(text)]
    return lab.exec(host, *argv, check=False, timeout_s=seconds + 30).stdout


def cleanup(lab: LabRig, *commands: tuple[str, str]) -> None:
    for host, text in commands:
        lab.exec(host, *seed(text), check=False)


def curl(lab: LabRig, url: str) -> str:
    """curl from the lab's client c1, retried while the service comes up."""
    return run(
        lab, "c1", f"curl -s --retry 20 --retry-connrefused --retry-delay 1 --max-time 5 {url}"
    )


def task_container(lab: LabRig, service: str) -> tuple[str, str]:
    """(host, container id) of one running task of ``service``."""
    node = run(
        lab,
        "h1",
        f"docker service ps {service} --filter desired-state=running --format {{{{.Node}}}}",
    ).split()[0]
    label = f"label=com.docker.swarm.service.name={service}"
    return node, run(lab, node, f"docker ps -q --filter {label}").split()[0]


def wait_running(lab: LabRig, service: str, replicas: int) -> list[str]:
    """Until ``replicas`` tasks of ``service`` run; the hostnames they run on."""
    wait_until(
        lambda: len(running(lab, service)) == replicas or None,
        CONVERGE_S,
        f"{replicas} running tasks of {service}",
    )
    hostnames = {n["ID"]: n["Description"]["Hostname"] for n in lab.api("h1", "/nodes")}
    return [hostnames[t["NodeID"]] for t in running(lab, service)]


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    """Seed 001, step 1: a swarm of three hosts (h1 the manager); c1 a machine on the LAN."""
    if not images.store_contents(images.current_store()):
        pytest.fail("the lab images are not built: run 'ferry lab images' (make test does)")
    with new_lab(hosts=3, clients=1, tools=False) as rig:
        # the tutorials' `docker` is Docker's own CLI, talking to the host's ferryd
        assert run(rig, "h1", "sh -c 'command -v docker'").strip() == "/usr/local/bin/docker"
        manager = rig.topo.node("h1").addr
        run(rig, "h1", f"docker swarm init --advertise-addr {manager}")
        token = run(rig, "h1", "docker swarm join-token -q worker").strip()
        for host in ("h2", "h3"):
            run(rig, host, f"docker swarm join --token {token} {manager}:2377")
        assert run(rig, "h1", "docker node ls").count("Ready") == 3
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


def test_seed_002_services_reach_each_other_and_the_web_server_reaches_mysql_by_name(
    lab: LabRig,
) -> None:
    try:
        run(lab, "h1", "docker network create -d overlay my_overlay_network")
        run(
            lab,
            "h1",
            """docker service create \\
  --name my_service \\
  --network my_overlay_network \\
  nginx""",
        )
        run(
            lab,
            "h1",
            """docker service create \\
     --name my_service2 \\
     --network my_overlay_network \\
     alpine ping my_service""",
        )
        wait_running(lab, "my_service2", 1)
        node, cid = task_container(lab, "my_service2")
        wait_until(
            lambda: "PING my_service (" in run(lab, node, f"docker logs {cid}") or None,
            30,
            "my_service2 resolving my_service",
        )

        run(lab, "h1", "docker network create -d overlay app_network")
        run(
            lab,
            "h1",
            """docker service create \\
     --name mysql_db \\
     --network app_network \\
     -e MYSQL_ROOT_PASSWORD=root \\
     mysql:5.7""",
        )
        run(
            lab,
            "h1",
            """docker service create \\
     --name web_server \\
     --network app_network \\
     nginx""",
        )
        wait_running(lab, "mysql_db", 1)
        wait_running(lab, "web_server", 1)
        # the mysql client logs in at mysql_db with the service's root password (once the
        # entrypoint has initialised the database)
        node, cid = task_container(lab, "mysql_db")
        query = f"docker exec {cid} mysql -h mysql_db -uroot -proot -N -e 'SELECT 40+2'"
        wait_until(
            lambda: lab.exec(node, *seed(query), check=False).stdout.strip() == "42" or None,
            60,
            "the mysql client at mysql_db",
        )
        # the web server reaches mysql_db by name: the server's greeting on port 3306
        # (binary: its unprintable bytes shown as dots)
        node, cid = task_container(lab, "web_server")
        probe = "exec 3<>/dev/tcp/mysql_db/3306 && timeout 5 head -c 80 <&3 | tr -c '[:print:]' ."
        greeting = lab.exec(node, "docker", "exec", cid, "bash", "-c", probe, check=False)
        assert "MariaDB" in greeting.stdout, greeting.stderr
    finally:
        cleanup(
            lab,
            ("h1", "docker service rm web_server mysql_db my_service2 my_service"),
            ("h1", "docker network rm app_network my_overlay_network"),
        )


def test_seed_003_httpd_replicas_scale_from_two_to_four(lab: LabRig) -> None:
    try:
        run(lab, "h1", "docker service create --replicas 2 --name httpd httpd:latest")
        wait_running(lab, "httpd", 2)
        run(lab, "h1", "docker service scale httpd=4")
        assert len(set(wait_running(lab, "httpd", 4))) > 1  # across nodes
        node, cid = task_container(lab, "httpd")
        request = (
            "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        )
        page = lab.exec(node, "docker", "exec", cid, "bash", "-c", request).stdout
        assert "200 OK" in page and "Apache" in page
    finally:
        cleanup(lab, ("h1", "docker service rm httpd"))


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
