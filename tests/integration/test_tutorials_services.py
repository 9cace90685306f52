"""Seeds 002 and 003 of the tutorials (/work/shared/seeds) as written, through the real docker
CLI on the lab's hosts (see test_tutorials.py): services that reach each other and mysql by
name, and httpd replicas scaled from two to four.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.lablib import LabRig, wait_until
from tests.integration.tutorialslib import (
    cleanup,
    run,
    seed,
    task_container,
    tutorial_swarm,
    wait_running,
)


@pytest.fixture(scope="module")
def lab() -> Iterator[LabRig]:
    with tutorial_swarm() as rig:
        yield rig


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
