"""What the tutorial tests (test_tutorials*.py) share: the tutorials' commands run as written
on a lab host, and the lab they start from (seed 001, step 1)."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def tutorial_swarm() -> Iterator[LabRig]:
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
