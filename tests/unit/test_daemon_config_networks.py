"""daemon.json's network keys reach the networks: ``default-address-pools`` is what a bridge
network without --subnet gets its subnet from, ``mtu`` the default bridge's MTU (on its
record, so the bridge and every veth plugged into it take it). The kernel is stood in for:
what would be programmed is recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pytest

from ferry.agent.local_networks import LocalNetworks
from ferry.errors import PoolExhausted
from ferry.model.codec import decode
from ferry.model.container import NETWORK_BRIDGE
from ferry.model.network import Network, NetworkRequest
from ferry.network.local import LOCAL_POOLS, HostFacts, choose_bridge_subnet

T = TypeVar("T")
HOST = HostFacts(links=frozenset({"lo", "eth0"}), routes=("10.99.0.0/24",))


class FakeKernel:
    """Answers the host's facts; nothing else may reach it."""

    async def run(self, fn: Any, *args: Any) -> Any:
        assert fn.__name__ == "host_facts", f"{fn.__name__} reached the kernel"
        return HOST


class FakeBridges:
    """The bridge driver: what ``apply`` was given, each time."""

    def __init__(self) -> None:
        self.applied: list[list[Network]] = []

    async def apply(self, networks: list[Network]) -> None:
        self.applied.append(list(networks))


def local(tmp_path: Path, **settings: Any) -> tuple[LocalNetworks, FakeBridges]:
    nets = LocalNetworks(
        FakeKernel(),  # type: ignore[arg-type]
        tmp_path / "networks",
        list,
        lambda _: [],
        egress_path=tmp_path / "egress.json",
        **settings,
    )
    bridges = FakeBridges()
    nets._bridge = bridges  # type: ignore[assignment]
    return nets, bridges


def test_docker_s_default_pools_are_172_17_to_31_then_192_168_in_slash_20s() -> None:
    assert LOCAL_POOLS[0] == ("172.17.0.0/16", 16)
    assert LOCAL_POOLS[-2:] == (("172.31.0.0/16", 16), ("192.168.0.0/16", 20))
    assert str(choose_bridge_subnet([])) == "172.17.0.0/16"
    assert str(choose_bridge_subnet(["172.17.0.0/16"])) == "172.18.0.0/16"
    # the egress bridge's subnet is one of the taken (network.egress), not a pool's exception
    assert str(choose_bridge_subnet(["172.17.0.0/16", "172.18.0.0/16"])) == "172.19.0.0/16"


def test_pools_are_taken_in_order_and_named_when_exhausted() -> None:
    pools = (("10.10.0.0/23", 24), ("10.20.0.0/16", 20))
    assert str(choose_bridge_subnet(["10.10.0.0/24"], pools)) == "10.10.1.0/24"
    assert str(choose_bridge_subnet(["10.10.0.0/23"], pools)) == "10.20.0.0/20"
    with pytest.raises(PoolExhausted, match=r"\(10.10.0.0/23 in /24s, 10.20.0.0/16 in /20s\)"):
        choose_bridge_subnet(["10.10.0.0/23", "10.20.0.0/16"], pools)


async def test_network_create_and_the_default_bridge_take_the_configured_pools(
    tmp_path: Path,
) -> None:
    nets, _ = local(tmp_path, pools=(("10.10.0.0/16", 24),))
    await nets.restore([])
    assert nets.resolve(NETWORK_BRIDGE).subnet == "10.10.0.0/24"
    assert nets.egress_subnet().subnet == "10.10.1.0/24"  # the egress bridge, as Docker's
    created = await nets.create(NetworkRequest("mine", "bridge"))
    assert (created.subnet, created.gateway) == ("10.10.2.0/24", "10.10.2.1")


async def test_the_default_bridge_has_docker_s_mtu_unless_told(tmp_path: Path) -> None:
    nets, bridges = local(tmp_path / "a")
    await nets.restore([])
    bridge = nets.resolve(NETWORK_BRIDGE)
    assert bridge.mtu == 1500
    assert bridge.options["com.docker.network.driver.mtu"] == "1500"  # as Docker's inspect
    nets, bridges = local(tmp_path / "b", bridge_mtu_bytes=1400)
    await nets.restore([])
    assert nets.resolve(NETWORK_BRIDGE).mtu == 1400
    assert [n.mtu for n in bridges.applied[-1]] == [1400]  # the bridge device is set to it
    user = await nets.create(NetworkRequest("mine", "bridge"))
    assert user.mtu == 0  # a network of the user's: its own --opt mtu, as in Docker


async def test_a_changed_mtu_reaches_the_default_bridge_at_the_next_start(tmp_path: Path) -> None:
    nets, _ = local(tmp_path)
    await nets.restore([])
    net_id = nets.resolve(NETWORK_BRIDGE).net_id
    nets, bridges = local(tmp_path, bridge_mtu_bytes=1450)
    await nets.restore([])
    assert nets.resolve(NETWORK_BRIDGE).net_id == net_id  # the same network, not a new one
    assert bridges.applied[0][0].mtu == 1450
    record = decode(Network, (tmp_path / "networks" / f"{net_id}.json").read_bytes())
    assert record.mtu == 1450
