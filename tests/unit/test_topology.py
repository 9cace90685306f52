from pathlib import Path

import pytest

from ferry.errors import InvalidArgument
from ferry.lab.records import exec_argv
from ferry.lab.topology import LAB_ROOT, plan_topology


def test_hosts_and_clients_get_their_documented_addresses() -> None:
    topo = plan_topology("acc", 3, 2, "10.99.0.0/24")
    assert [(n.name, n.addr) for n in topo.nodes] == [
        ("h1", "10.99.0.11"),
        ("h2", "10.99.0.12"),
        ("h3", "10.99.0.13"),
        ("c1", "10.99.0.101"),
        ("c2", "10.99.0.102"),
        ("registry", "10.99.0.250"),
    ]
    assert [n.name for n in topo.hosts] == ["h1", "h2", "h3"]
    assert topo.registry_address == "10.99.0.250:5000"


def test_every_namespace_carries_the_lab_name_as_prefix() -> None:
    topo = plan_topology("acc", 2, 1, "10.98.0.0/24")
    assert topo.underlay_netns == "acc-ul"
    assert all(n.netns.startswith("acc-") for n in topo.nodes)
    assert topo.node("h2").netns_prefix == "acc-h2-"


@pytest.mark.parametrize(
    ("name", "hosts", "clients", "subnet"),
    [
        ("Acc", 3, 0, "10.99.0.0/24"),
        ("a-b", 3, 0, "10.99.0.0/24"),
        ("toolongname", 3, 0, "10.99.0.0/24"),
        ("acc", 0, 0, "10.99.0.0/24"),
        ("acc", 90, 0, "10.99.0.0/24"),
        ("acc", 3, 100, "10.99.0.0/24"),
        ("acc", 3, 0, "10.99.0.0/25"),
        ("acc", 3, 0, "10.99.0.1/24"),
        ("acc", 3, 0, "not-a-subnet"),
    ],
)
def test_bad_lab_options_are_refused(name: str, hosts: int, clients: int, subnet: str) -> None:
    with pytest.raises(InvalidArgument):
        plan_topology(name, hosts, clients, subnet)


def test_asking_for_an_unknown_host_lists_the_known_ones() -> None:
    topo = plan_topology("acc", 2, 0, "10.99.0.0/24")
    with pytest.raises(InvalidArgument, match="h1, h2, registry"):
        topo.node("h9")


def test_each_lab_node_runs_the_docker_cli_with_its_own_config_inside_the_lab_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", "/root/.docker")  # the machine's, never a node's
    topo = plan_topology("acc", 2, 1, "10.98.0.0/24")
    configs = {}
    for node in topo.nodes:
        _, env = exec_argv(topo, node.name, ["docker", "login"])
        configs[node.name] = Path(env["DOCKER_CONFIG"])
    assert configs["h1"] == LAB_ROOT / "acc" / "h1" / "docker"
    assert len(set(configs.values())) == len(topo.nodes)
    assert all(path.is_relative_to(topo.lab_dir) for path in configs.values())  # lab down
