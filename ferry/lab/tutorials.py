"""The tutorials ``ferry lab demo`` walks, as steps: the seeds' own commands, through the real
docker CLI on the lab's hosts, with the images the lab's registry serves (pulled by each host
the first time it needs one).

Where a tutorial's command cannot be typed as written in a lab, the step says what changed and
why: addresses are the lab's (``--advertise-addr`` is h1's underlay address, the MACVLAN LAN is
the lab's underlay), a ``ping`` that would run forever gets ``-c 3``, and an interactive shell
(``docker exec -it … sh``) becomes the command one would type in it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from ferry.lab.topology import LabTopology

Query = Callable[[str, str], str]  # (host, shell-like command) -> its standard output
NGINX_PAGE = "Welcome to nginx!"
RUNNING = "--filter desired-state=running --format {{.CurrentState}}"


@dataclass(frozen=True)
class Step:
    title: str
    host: str
    command: tuple[str, ...]
    check: Callable[[str], bool] = lambda _out: True


def step(title: str, host: str, command: str, check: Callable[[str], bool] | None = None) -> Step:
    """A step from the command as a person types it (split as a POSIX shell would)."""
    return Step(title, host, tuple(shlex.split(command)), check or (lambda _out: True))


def has(*words: str) -> Callable[[str], bool]:
    return lambda out: all(word in out for word in words)


def curl(url: str) -> str:
    """curl from a lab client, retried while the service comes up (its first task pulls)."""
    return f"curl -s --retry 10 --retry-connrefused --retry-delay 1 --max-time 5 {url}"


def swarm(topo: LabTopology, token: Callable[[], str]) -> list[Step | Callable[[], Step]]:
    """Seed 001, step 1 (and 002's): a swarm of h1 (manager) and the other hosts."""
    h1 = topo.node("h1").addr
    out: list[Step | Callable[[], Step]] = [
        step("Initialise the swarm on h1", "h1", f"docker swarm init --advertise-addr {h1}")
    ]
    out += [_join(host.name, h1, token) for host in topo.hosts[1:]]
    count = len(topo.hosts)
    out.append(step("List the nodes", "h1", "docker node ls", lambda o: o.count("Ready") == count))
    return out


def _join(host: str, manager: str, token: Callable[[], str]) -> Callable[[], Step]:
    """The join step, made when it runs (the token exists once the swarm does)."""
    return lambda: step(
        f"Join {host} as a worker", host, f"docker swarm join --token {token()} {manager}:2377"
    )


def seed000(topo: LabTopology) -> list[Step | Callable[[], Step]]:
    """Seed 000: containers of alpine on an attachable overlay; nginx on MACVLAN."""
    base = topo.subnet.rsplit(".", 1)[0]
    web = f"{base}.100"
    return [
        step(
            "Seed 000: an attachable overlay",
            "h1",
            "docker network create -d overlay --attachable my_overlay",
        ),
        step(
            "Run app1 on h2 (h2 pulls alpine from the lab registry)",
            "h2",
            "docker run -d --network my_overlay --name app1 alpine sleep 3600",
        ),
        step(
            "Run app2 on h3",
            "h3",
            "docker run -d --network my_overlay --name app2 alpine sleep 3600",
        ),
        step(
            "Ping app2 by name from app1, across hosts (-c 3: the tutorial's ping runs forever)",
            "h2",
            "docker exec app1 ping -c 3 app2",
            has(" 0% packet loss"),
        ),
        step("Clean up", "h2", "docker rm -f app1"),
        step("", "h3", "docker rm -f app2"),
        step("", "h1", "docker network rm my_overlay"),
        step(
            f"MACVLAN on the lab's LAN (the tutorial's is 192.168.1.0/24; here {topo.subnet})",
            "h1",
            f"docker network create -d macvlan --subnet={topo.subnet} --gateway={base}.1 "
            "-o parent=eth0 my_macvlan",
        ),
        step(
            f"Run nginx with its own LAN address {web}",
            "h1",
            f"docker run -d --name web-macvlan --network my_macvlan --ip {web} nginx",
        ),
        step(
            "Reach it from c1, another machine on the LAN",
            "c1",
            curl(f"http://{web}/"),
            has(NGINX_PAGE),
        ),
        step("Clean up", "h1", "docker rm -f web-macvlan"),
        step("", "h1", "docker network rm my_macvlan"),
    ]


def seed001(topo: LabTopology) -> list[Step | Callable[[], Step]]:
    """Seed 001: nginx as a service published on every node, and as a container."""
    out: list[Step | Callable[[], Step]] = [
        step(
            "Seed 001: an attachable overlay",
            "h1",
            "docker network create --driver overlay --attachable my_overlay_network",
        ),
        step("List networks", "h1", "docker network ls", has("my_overlay_network")),
        step(
            "nginx as a service, port 8080 published on every node",
            "h1",
            "docker service create --name nginx-service --network my_overlay_network "
            "-p 8080:80 nginx",
        ),
    ]
    out += [
        step(
            f"nginx's page through {h.name}:8080" if i == 0 else "",
            "c1",
            curl(f"http://{h.addr}:8080/"),
            has(NGINX_PAGE),
        )
        for i, h in enumerate(topo.hosts)
    ]
    h2 = topo.node("h2").addr
    out += [
        step(
            "A standalone nginx on the network, port 8081 on h2",
            "h2",
            "docker run -d --name nginx-container --network my_overlay_network -p 8081:80 nginx",
        ),
        step("", "c1", curl(f"http://{h2}:8081/"), has(NGINX_PAGE)),
        step(
            "A shell's view from inside the network (the tutorial's 'docker exec -it … sh')",
            "h3",
            "docker run -d --name shell --network my_overlay_network alpine sleep 3600",
        ),
        step("", "h3", "docker exec shell ping -c 3 nginx-container", has(" 0% packet loss")),
        step("", "h3", "docker exec shell curl -s http://nginx-service:80", has(NGINX_PAGE)),
        step(
            "Inspect the network",
            "h1",
            "docker network inspect my_overlay_network",
            has('"Subnet"'),
        ),
        step("Clean up", "h3", "docker rm -f shell"),
        step("", "h2", "docker rm -f nginx-container"),
        step("", "h1", "docker service rm nginx-service"),
        step("", "h1", "docker network rm my_overlay_network"),
    ]
    return out


def seed002(query: Query) -> list[Step | Callable[[], Step]]:
    """Seed 002: services on an overlay, and a web server reaching MySQL by name."""

    def task_container(service: str) -> tuple[str, str]:
        node = query(
            "h1",
            f"docker service ps {service} --filter desired-state=running --format {{{{.Node}}}}",
        ).split()[0]
        label = f"label=com.docker.swarm.service.name={service}"
        return node, query(node, f"docker ps -q --filter {label}").split()[0]

    def on_task(service: str, title: str, command: str, check: Callable[[str], bool]) -> Step:
        node, cid = task_container(service)
        return step(title, node, command.format(cid=cid), check)

    return [
        step("Seed 002: an overlay", "h1", "docker network create -d overlay my_overlay_network"),
        step(
            "A service of nginx on it",
            "h1",
            "docker service create --name my_service --network my_overlay_network nginx",
        ),
        step(
            "A second service pinging the first by name",
            "h1",
            "docker service create --name my_service2 --network my_overlay_network "
            "alpine ping my_service",
        ),
        step("", "h1", "docker service ls", has("my_service2")),
        step("Web application and database", "h1", "docker network create -d overlay app_network"),
        step(
            "MySQL (the lab's mysql:5.7 is MariaDB's stand-in)",
            "h1",
            "docker service create --name mysql_db --network app_network "
            "-e MYSQL_ROOT_PASSWORD=root mysql:5.7",
        ),
        step(
            "nginx",
            "h1",
            "docker service create --name web_server --network app_network nginx",
        ),
        lambda: on_task(
            "mysql_db",
            "The mysql client logs in at mysql_db with the service's root password",
            "docker exec {cid} mysqladmin --wait=30 --connect-timeout=2 -h mysql_db -uroot "
            "-proot ping",
            has("is alive"),
        ),
        lambda: on_task(
            "web_server",
            "The web server resolves mysql_db and reaches its port 3306",
            "docker exec {cid} bash -c 'getent hosts mysql_db && "
            'exec 3<>/dev/tcp/mysql_db/3306 && timeout 5 head -c 80 <&3 | tr -c "[:print:]" .\'',
            has("MariaDB"),
        ),
        step("Clean up", "h1", "docker service rm web_server mysql_db my_service2 my_service"),
        step("", "h1", "docker network rm app_network my_overlay_network"),
    ]


def seed003_004() -> list[Step | Callable[[], Step]]:
    """Seeds 003 and 004: replicated services, scaled."""
    return [
        step(
            "Seed 003: httpd, two replicas",
            "h1",
            "docker service create --replicas 2 --name httpd httpd:latest",
        ),
        step("Scale to four", "h1", "docker service scale httpd=4"),
        step("", "h1", f"docker service ps httpd {RUNNING}", lambda o: o.count("Running") == 4),
        step("Clean up", "h1", "docker service rm httpd"),
        step("Seed 004: an overlay", "h1", "docker network create -d overlay myoverlay"),
        step("A service on it", "h1", "docker service create --name web --network myoverlay nginx"),
        step("Scale it across the nodes", "h1", "docker service scale web=3"),
        step("", "h1", f"docker service ps web {RUNNING}", lambda o: o.count("Running") == 3),
        step("Inspect the network", "h1", "docker network inspect myoverlay", has("myoverlay")),
    ]


def all_steps(
    topo: LabTopology, token: Callable[[], str], query: Query
) -> list[Step | Callable[[], Step]]:
    return [
        *swarm(topo, token),
        *seed000(topo),
        *seed001(topo),
        *seed002(query),
        *seed003_004(),
    ]
