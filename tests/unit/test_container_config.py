"""An image's config drives the container made from it: ``POST /containers/create`` through the
whole local API (in-process, no kernel), then ``inspect`` shows Docker's merged ``Config`` and
its ``Path``/``Args``. The merge's rules themselves are in test_imageconfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ferry.api.models.containers import HealthConfigBody
from ferry.api.run_options import healthcheck
from ferry.cli.runflags import HealthFlags, RunFlags, create_body
from ferry.errors import InvalidArgument
from ferry.model.container import ContainerConfig
from ferry.model.imageconfig import EPHEMERAL_PORTS
from ferry.runtime.oci import container_args
from tests.unit.api_rig import Client, api_client

NGINX: dict[str, Any] = {
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "Env": ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.22"],
    "WorkingDir": "/srv",
    "User": "www-data",
    "ExposedPorts": {"80/tcp": {}},
    "StopSignal": "SIGQUIT",
    "Labels": {"built-from": "debian nginx-light"},
    "Volumes": {"/var/cache/nginx": {}},
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5 * 10**9},
}
NO_NET = {"NetworkMode": "none"}  # the rig has no default bridge network


async def _create(client: Client, name: str, **body: Any) -> dict[str, Any]:
    created = await client.post(
        f"/v1.47/containers/create?name={name}",
        json={"Image": "tools", "HostConfig": NO_NET, **body},
    )
    assert created.status == 201, await created.text()
    inspected = await client.get(f"/v1.47/containers/{name}/json")
    return await inspected.json()  # type: ignore[no-any-return]


async def test_an_image_with_a_cmd_runs_without_a_command(tmp_path: Path) -> None:
    async with api_client(tmp_path, NGINX) as client:
        got = await _create(client, "web")
    assert got["Path"] == "/docker-entrypoint.sh"
    assert got["Args"] == ["nginx", "-g", "daemon off;"]
    config = got["Config"]
    assert config["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert config["Env"] == ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.22"]
    assert (config["WorkingDir"], config["User"]) == ("/srv", "www-data")
    assert (config["StopSignal"], config["ExposedPorts"]) == ("SIGQUIT", {"80/tcp": {}})
    assert config["Labels"] == {"built-from": "debian nginx-light"}
    assert config["Healthcheck"]["Test"] == ["CMD", "true"]
    volumes = [m for m in got["Mounts"] if m["Destination"] == "/var/cache/nginx"]
    assert [m["Type"] for m in volumes] == ["volume"]  # the image's VOLUME, anonymous


async def test_the_runs_options_win_over_the_images(tmp_path: Path) -> None:
    async with api_client(tmp_path, NGINX) as client:
        got = await _create(
            client,
            "web",
            Cmd=["sh"],
            Env=["NGINX_VERSION=mine"],
            WorkingDir="/tmp",
            User="0",
            Labels={"built-from": "me"},
            Healthcheck={"Timeout": 2 * 10**9},
        )
    assert (got["Path"], got["Args"]) == ("/docker-entrypoint.sh", ["sh"])
    config = got["Config"]
    assert config["Env"] == ["NGINX_VERSION=mine", "PATH=/usr/sbin:/usr/bin"]
    assert (config["WorkingDir"], config["User"]) == ("/tmp", "0")
    assert config["Labels"] == {"built-from": "me"}
    health = config["Healthcheck"]
    assert (health["Test"], health["Interval"], health["Timeout"]) == (
        ["CMD", "true"], 5 * 10**9, 2 * 10**9,
    )  # fmt: skip


async def test_an_entrypoint_given_drops_the_images_cmd(tmp_path: Path) -> None:
    async with api_client(tmp_path, NGINX) as client:
        got = await _create(client, "top", Entrypoint=["top"])
        cleared = await client.post(
            "/v1.47/containers/create?name=bare",
            json={"Image": "tools", "Entrypoint": [""], "HostConfig": NO_NET},
        )
        assert cleared.status == 400
        assert (await cleared.json())["message"].startswith("No command specified")
    assert (got["Path"], got["Args"]) == ("top", [])
    assert (got["Config"]["Entrypoint"], got["Config"]["Cmd"]) == (["top"], None)


async def test_an_image_without_cmd_and_no_command_is_refused(tmp_path: Path) -> None:
    async with api_client(tmp_path) as client:
        created = await client.post(
            "/v1.47/containers/create", json={"Image": "tools", "HostConfig": NO_NET}
        )
        assert created.status == 400
        assert (await created.json())["message"].startswith(
            "No command specified (the image tools:latest has no Cmd or Entrypoint)"
        )


async def test_publish_all_publishes_each_exposed_port_on_an_ephemeral_port(
    tmp_path: Path,
) -> None:
    async with api_client(tmp_path, NGINX) as client:
        got = await _create(
            client,
            "web",
            ExposedPorts={"53/udp": {}},
            HostConfig={**NO_NET, "PublishAllPorts": True},
        )
    bindings = got["HostConfig"]["PortBindings"]
    assert sorted(bindings) == ["53/udp", "80/tcp"]
    low, high = EPHEMERAL_PORTS
    for entries in bindings.values():
        assert low <= int(entries[0]["HostPort"]) <= high
    assert got["HostConfig"]["PublishAllPorts"] is True


def test_the_cli_sends_the_docker_clis_entrypoint_publish_all_and_partial_health() -> None:
    flags = RunFlags("nginx", [], entrypoint="", publish_all=True, health=HealthFlags(retries=5))
    body = create_body(flags)
    assert body["Entrypoint"] == [""]  # docker run --entrypoint "": cleared
    assert body["HostConfig"]["PublishAllPorts"] is True
    assert body["Healthcheck"]["Test"] is None and body["Healthcheck"]["Retries"] == 5
    assert create_body(RunFlags("nginx", []))["Entrypoint"] is None


def test_the_runtime_runs_the_entrypoint_then_the_command() -> None:
    config = ContainerConfig("c" * 64, "web", "nginx", ("-g", "x"), entrypoint=("nginx",))
    assert container_args(config) == ["nginx", "-g", "x"]
    old = ContainerConfig("c" * 64, "web", "tools", ("sleep", "1"))  # stored before entrypoint
    assert container_args(old) == ["sleep", "1"]


def test_a_services_health_options_without_a_test_are_refused() -> None:
    """A service keeps its check whole (it is not completed from the image's): options without
    --health-cmd are refused by name, never dropped."""
    with pytest.raises(InvalidArgument, match="need a test"):
        healthcheck(HealthConfigBody(Interval=10**9))
    assert healthcheck(HealthConfigBody()) is None
    check = healthcheck(HealthConfigBody(Test=["CMD", "true"], Retries=2))
    assert check is not None and (check.interval_s, check.retries) == (30.0, 2)


async def test_a_port_without_host_port_gets_an_ephemeral_one(tmp_path: Path) -> None:
    """docker run -p 80 -p 81 (HostPort ""): each on its own free port of the range."""
    async with api_client(tmp_path, NGINX) as client:
        bindings = {"80/tcp": [{"HostPort": ""}], "81/tcp": [{"HostPort": ""}]}
        got = await _create(client, "web", HostConfig={**NO_NET, "PortBindings": bindings})
    ports = {
        key: int(entries[0]["HostPort"])
        for key, entries in got["HostConfig"]["PortBindings"].items()
    }
    low, high = EPHEMERAL_PORTS
    assert sorted(ports) == ["80/tcp", "81/tcp"]
    assert all(low <= port <= high for port in ports.values())
    assert ports["80/tcp"] != ports["81/tcp"]
