from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ferry.api.render import container_inspect, container_summary, network, network_services
from ferry.model.container import (
    AttachedEndpoint,
    Container,
    ContainerConfig,
    ContainerState,
    NetworkChoice,
    Status,
)
from ferry.model.network import Driver, Endpoint, EndpointKind, Network, Scope
from ferry.model.node import Node, Role
from ferry.model.runopts import Healthcheck

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


def test_inspect_carries_dockers_network_settings_and_endpoint_settings() -> None:
    schemas = yaml.safe_load(API.read_text())["definitions"]
    running = Container(CONFIG, ContainerState(status=Status.RUNNING, endpoints=(FRONT,)))
    settings = container_inspect(running, "/run/netns/x")["NetworkSettings"]
    assert set(_properties(schemas, "NetworkSettings")) - set(settings) == set()
    for endpoint in settings["Networks"].values():
        assert set(_properties(schemas, "EndpointSettings")) - set(endpoint) == set()
    assert settings["IPAddress"] == ""  # the deprecated top level: the default bridge only


def test_inspect_names_a_log_driver_whose_logs_clients_read_back() -> None:
    # docker-py's containers.run() returns the output only for json-file or journald
    inspected = container_inspect(Container(CONFIG, ContainerState(Status.CREATED)), "")
    assert inspected["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}


OVERLAY = Network("n" * 25, "blue", Driver.OVERLAY, Scope.SWARM, "10.9.0.0/24", "10.9.0.1")
NODES = {n: Node(n, f"host-{n}", Role.WORKER, f"192.0.2.{i}") for i, n in enumerate("ab", 1)}


def _endpoint(ep_id: str, node: str, kind: EndpointKind, *owner_name_ip: str) -> Endpoint:
    owner, name, ip = owner_name_ip
    service = "web" if kind in (EndpointKind.TASK, EndpointKind.VIP) else ""
    mac = "02:42:0a:09:00:00"
    return Endpoint(ep_id, OVERLAY.net_id, node, ip, mac, kind, owner, name, service=service)


ENDPOINTS = [
    _endpoint("v" * 64, "", EndpointKind.VIP, "svc", "web", "10.9.0.2"),
    _endpoint("t" * 64, "a", EndpointKind.TASK, "task1", "web.1.task1", "10.9.0.3"),
    _endpoint("u" * 64, "b", EndpointKind.TASK, "task2", "web.2.task2", "10.9.0.4"),
    _endpoint("c" * 64, "b", EndpointKind.CONTAINER, "x" * 64, "app", "10.9.0.5"),
]


def _task_container(container_id: str, name: str, ep_id: str, ip: str) -> Container:
    config = ContainerConfig(container_id, name, "host", ("sleep", "60"))
    attached = AttachedEndpoint(OVERLAY.net_id, "blue", "overlay", ep_id, ip, 24, "", "", "eth0")
    return Container(config, ContainerState(status=Status.RUNNING, endpoints=(attached,)))


def test_a_swarm_network_lists_only_this_nodes_containers_keyed_by_container_id() -> None:
    here = [_task_container("k" * 64, "web.1.task1", "t" * 64, "10.9.0.3")]
    inspected = network(OVERLAY, ENDPOINTS, NODES, "a", here)
    assert list(inspected["Containers"]) == ["k" * 64]  # not the task id, not node b's
    assert inspected["Containers"]["k" * 64]["Name"] == "web.1.task1"
    assert "Node" not in inspected["Containers"]["k" * 64]
    assert {p["IP"] for p in inspected["Peers"]} == {"192.0.2.1", "192.0.2.2"}
    stopped = [replace(here[0], state=ContainerState(status=Status.EXITED))]
    assert network(OVERLAY, ENDPOINTS, NODES, "a", stopped)["Containers"] == {}


def test_verbose_services_list_every_nodes_tasks_with_their_host() -> None:
    services = network_services(OVERLAY, ENDPOINTS, NODES)
    assert services["web"]["VIP"] == "10.9.0.2"
    tasks = {t["Name"]: t["Info"]["Host IP"] for t in services["web"]["Tasks"]}
    assert tasks == {"web.1.task1": "192.0.2.1", "web.2.task2": "192.0.2.2"}
    assert [t["Name"] for t in services[""]["Tasks"]] == ["app"]


def test_health_appears_once_a_container_with_a_health_check_has_started() -> None:
    config = replace(CONFIG, healthcheck=Healthcheck(("CMD", "true")))
    created = Container(config, ContainerState(status=Status.CREATED))
    assert "Health" not in container_inspect(created, "")["State"]
    started = ContainerState(status=Status.RUNNING, started_at="2026-11-30T18:00:00Z")
    health = container_inspect(Container(config, started), "")["State"]["Health"]
    assert health == {"Status": "starting", "FailingStreak": 0, "Log": []}
