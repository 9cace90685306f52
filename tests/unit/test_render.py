from pathlib import Path
from typing import Any

import yaml

from ferry.api.render import container_inspect, container_summary
from ferry.model.container import (
    AttachedEndpoint,
    Container,
    ContainerConfig,
    ContainerState,
    NetworkChoice,
    Status,
)

CONFIG = ContainerConfig(
    "c" * 64,
    "web",
    "host",
    ("sleep", "60"),
    networks=(NetworkChoice("front", ("www",)), NetworkChoice("back")),
)
API = Path(__file__).parents[3] / "shared" / "docker-api" / "engine-api-v1.47.yaml"
FRONT = AttachedEndpoint(
    "f" * 25,
    "front",
    "bridge",
    "e" * 64,
    "172.20.0.2",
    16,
    "172.20.0.1",
    "02:42:ac:14:00:02",
    "eth0",
)


def networks_of(container: Container) -> dict[str, dict[str, object]]:
    networks: dict[str, dict[str, object]] = container_summary(container)["NetworkSettings"][
        "Networks"
    ]
    return networks


def test_a_stopped_container_still_lists_its_networks_without_addresses() -> None:
    stopped = Container(CONFIG, ContainerState(status=Status.EXITED))
    networks = networks_of(stopped)
    assert set(networks) == {"front", "back"}
    assert networks["front"]["IPAddress"] == ""
    assert networks["front"]["Aliases"] == ["www"]


def test_a_running_container_lists_each_network_once_with_its_address() -> None:
    # "back" not attached yet (a start half done): listed, empty; "front" from its endpoint
    running = Container(CONFIG, ContainerState(status=Status.RUNNING, endpoints=(FRONT,)))
    networks = networks_of(running)
    assert set(networks) == {"front", "back"}
    assert networks["front"]["IPAddress"] == "172.20.0.2"
    assert networks["back"]["IPAddress"] == ""


def test_a_stopped_container_s_networks_are_named_even_when_it_was_given_ids() -> None:
    # a task's container names its networks by id; Docker lists names, with the id beside
    config = ContainerConfig("t" * 64, "web.1", "host", ("sleep", "60"),
                             networks=(NetworkChoice("f" * 25),))  # fmt: skip
    stopped = Container(config, ContainerState(status=Status.EXITED))
    summary = container_summary(stopped, lambda ref: ("front", ref))
    networks = summary["NetworkSettings"]["Networks"]
    assert list(networks) == ["front"]
    assert networks["front"]["NetworkID"] == "f" * 25


def _properties(schemas: dict[str, Any], name: str) -> dict[str, Any]:
    schema = schemas[name]
    out: dict[str, Any] = {}
    for part in schema.get("allOf", [schema]):
        if "$ref" in part:
            out |= _properties(schemas, part["$ref"].rsplit("/", 1)[-1])
        else:
            out |= part.get("properties", {})
    return out


# Docker leaves these out when they are empty (``omitempty`` in its Go types)
OMITTED_WHEN_EMPTY = {"Mounts", "Annotations", "StorageOpt", "KernelMemoryTCP"}
CONFIG_OMITTED_WHEN_EMPTY = {"ArgsEscaped", "MacAddress", "NetworkDisabled", "Shell"}


def test_inspect_carries_every_field_docker_always_has() -> None:
    schemas = yaml.safe_load(API.read_text())["definitions"]
    inspected = container_inspect(Container(CONFIG, ContainerState(Status.CREATED)), "")
    host = set(_properties(schemas, "HostConfig")) - OMITTED_WHEN_EMPTY
    assert host - set(inspected["HostConfig"]) == set()
    config = set(_properties(schemas, "ContainerConfig")) - CONFIG_OMITTED_WHEN_EMPTY
    assert config - set(inspected["Config"]) == set()
    assert inspected["HostConfig"]["BlkioWeight"] == 0
    assert inspected["HostConfig"]["ShmSize"] == 64 << 20
