"""The egress bridge's subnet comes from the local address pools, as Docker's docker_gwbridge
does (172.18.0.0/16 with Docker's defaults, after the default bridge's 172.17.0.0/16), is kept
once taken, and is what every user of it reads: the masquerade rule, the ingress sandbox's
address and the mesh's DNAT, ``network inspect``. The kernel is stood in for."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from ferry.agent.local_networks import LocalNetworks
from ferry.api import render
from ferry.errors import PoolExhausted, SubnetOverlap, Unavailable
from ferry.model.codec import decode
from ferry.model.container import NETWORK_BRIDGE
from ferry.model.network import Driver, EgressSubnet, Network, NetworkRequest, Scope
from ferry.network.drivers.gwbridge import egress_rules
from ferry.network.egress import EgressSource, clashes, from_pools, kept_egress, plan_egress
from ferry.network.local import LOCAL_POOLS, HostFacts
from ferry.network.ports import HostForward, ingress_forwards

LAN = HostFacts(
    links=frozenset({"lo", "eth0"}),
    routes=("10.99.0.0/24",),
    addresses=(("lo", "127.0.0.1/8"), ("eth0", "10.99.0.5/24")),
)
POOLS = (("10.123.0.0/16", 24),)


class FakeKernel:
    """Answers the host's facts; nothing else may reach it."""

    def __init__(self, facts: HostFacts) -> None:
        self.facts = facts

    async def run(self, fn: Any, *args: Any) -> Any:
        assert fn.__name__ == "host_facts", f"{fn.__name__} reached the kernel"
        return self.facts


class FakeBridges:
    async def apply(self, networks: list[Network]) -> None:
        pass


async def started(
    state: Path,
    facts: HostFacts = LAN,
    swarm: list[Network] | None = None,
    **settings: Any,
) -> LocalNetworks:
    """A ferryd start on the host whose state directory is ``state``."""
    nets = LocalNetworks(
        FakeKernel(facts),  # type: ignore[arg-type]
        state / "networks",
        lambda: list(swarm or []),
        lambda _: [],
        egress_path=state / "egress.json",
        **settings,
    )
    nets._bridge = FakeBridges()  # type: ignore[assignment]
    await nets.restore([])
    return nets


def overlay(subnet: str) -> Network:
    return Network("o" * 64, "ova", Driver.OVERLAY, Scope.SWARM, subnet, "")


# the subnet a host takes ------------------------------------------------------------------------
async def test_a_fresh_host_with_docker_s_pools_gets_172_18_after_the_default_bridge(
    tmp_path: Path,
) -> None:
    nets = await started(tmp_path)
    assert nets.resolve(NETWORK_BRIDGE).subnet == "172.17.0.0/16"
    egress = nets.egress_subnet()
    assert (egress.subnet, egress.gateway, egress.sandbox_ip, egress.prefixlen) == (
        "172.18.0.0/16",
        "172.18.0.1",
        "172.18.0.2",
        16,
    )
    assert decode(EgressSubnet, (tmp_path / "egress.json").read_bytes()) == egress


async def test_a_fresh_host_with_configured_pools_takes_its_egress_subnet_from_them(
    tmp_path: Path,
) -> None:
    nets = await started(tmp_path, pools=POOLS)
    assert nets.resolve(NETWORK_BRIDGE).subnet == "10.123.0.0/24"
    egress = nets.egress_subnet()
    assert (egress.subnet, egress.gateway, egress.sandbox_ip) == (
        "10.123.1.0/24",
        "10.123.1.1",
        "10.123.1.2",
    )


async def test_the_egress_subnet_skips_the_host_s_routes_addresses_and_known_networks(
    tmp_path: Path,
) -> None:
    facts = HostFacts(
        links=LAN.links,
        routes=("172.18.4.0/24",),  # a LAN route inside 172.18
        addresses=(("eth1", "172.19.0.9/32"),),  # an address with no route of its own
    )
    nets = await started(tmp_path, facts, swarm=[overlay("172.20.0.0/16")])
    assert nets.egress_subnet().subnet == "172.21.0.0/16"


def test_the_plan_takes_the_first_free_size_of_the_pools_in_order() -> None:
    pools = (("10.1.0.0/23", 24), ("10.2.0.0/16", 20))
    choice = plan_egress(["10.1.0.0/24"], ["10.1.1.0/25"], [], pools)
    assert (choice.egress.subnet, choice.source) == ("10.2.0.0/20", EgressSource.POOLS)
    with pytest.raises(PoolExhausted, match="default-address-pools"):
        plan_egress(["10.1.0.0/23", "10.2.0.0/16"], [], [], pools)


async def test_no_egress_subnet_is_given_before_the_start_decided_it(tmp_path: Path) -> None:
    nets = LocalNetworks(
        FakeKernel(LAN),  # type: ignore[arg-type]
        tmp_path / "networks",
        list,
        lambda _: [],
        egress_path=tmp_path / "egress.json",
    )
    with pytest.raises(Unavailable, match="egress bridge"):
        nets.egress_subnet()


# the subnet a host keeps ------------------------------------------------------------------------
async def test_a_restart_with_other_pools_keeps_the_subnet_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = await started(tmp_path)
    assert first.egress_subnet().subnet == "172.18.0.0/16"
    caplog.set_level(logging.INFO, logger="ferry.local_networks")
    again = await started(tmp_path, pools=POOLS)
    assert again.egress_subnet().subnet == "172.18.0.0/16"
    kept = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("keeps its subnet, not one of default-address-pools" in m for m in kept), kept
    # a fresh host with the same settings takes the new pools
    fresh = await started(tmp_path / "other", pools=POOLS)
    assert fresh.egress_subnet().subnet == "10.123.1.0/24"


async def test_a_restart_with_the_same_pools_says_nothing_about_moving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await started(tmp_path, pools=POOLS)
    caplog.set_level(logging.WARNING, logger="ferry.local_networks")
    again = await started(tmp_path, pools=POOLS)
    assert again.egress_subnet().subnet == "10.123.1.0/24"
    assert caplog.records == []


async def test_a_bridge_made_before_the_record_keeps_its_subnet_and_is_recorded(
    tmp_path: Path,
) -> None:
    facts = HostFacts(
        links=LAN.links | {"ferry_gwbridge"},
        routes=(*LAN.routes, "172.18.0.0/16"),
        addresses=(*LAN.addresses, ("ferry_gwbridge", "172.18.0.1/16")),
    )
    nets = await started(tmp_path, facts, pools=POOLS)
    assert nets.egress_subnet().subnet == "172.18.0.0/16"
    recorded = decode(EgressSubnet, (tmp_path / "egress.json").read_bytes())
    assert recorded.subnet == "172.18.0.0/16"
    assert nets.resolve(NETWORK_BRIDGE).subnet == "10.123.0.0/24"


def test_the_record_wins_over_the_bridge_and_a_fresh_host_keeps_nothing() -> None:
    saved = EgressSubnet("10.123.1.0/24")
    kept = kept_egress(saved, ["172.18.0.1/16"])
    assert kept is not None and (kept.egress, kept.source) == (saved, EgressSource.RECORD)
    bridge = kept_egress(None, ["172.18.0.1/16"])
    assert bridge is not None and bridge.egress.subnet == "172.18.0.0/16"
    assert bridge.source == EgressSource.BRIDGE
    assert kept_egress(None, []) is None


def test_a_kept_subnet_is_checked_against_the_pools_and_the_routes() -> None:
    egress = EgressSubnet("172.18.0.0/16")
    assert from_pools(egress, LOCAL_POOLS)
    assert not from_pools(egress, POOLS)
    assert not from_pools(EgressSubnet("172.18.0.0/24"), LOCAL_POOLS)  # not the pool's size
    # its own connected route is no clash, a LAN route inside it is
    assert clashes(egress, ["172.18.0.0/16", "10.99.0.0/24", "172.18.7.0/24"]) == ["172.18.7.0/24"]


# local networks around it -----------------------------------------------------------------------
async def test_local_networks_made_later_avoid_the_egress_subnet(tmp_path: Path) -> None:
    nets = await started(tmp_path, pools=POOLS)
    created = await nets.create(NetworkRequest("mine", "bridge"))
    assert created.subnet == "10.123.2.0/24"
    with pytest.raises(SubnetOverlap, match="ferry_gwbridge"):
        await nets.create(NetworkRequest("clash", "bridge", subnet="10.123.1.128/25"))
    # with Docker's pools the old fixed address is free for a network of the user's
    elsewhere = await started(tmp_path / "other", pools=POOLS)
    given = await elsewhere.create(NetworkRequest("mine", "bridge", subnet="172.18.0.0/16"))
    assert given.subnet == "172.18.0.0/16"


# what reads it ----------------------------------------------------------------------------------
def test_the_masquerade_rule_names_the_host_s_egress_subnet() -> None:
    body = egress_rules(EgressSubnet("10.123.1.0/24"))
    assert 'ip saddr 10.123.1.0/24 oifname != "ferry_gwbridge" masquerade' in body
    assert "172.18" not in body


def test_the_mesh_forwards_to_the_sandbox_s_address_in_the_egress_subnet() -> None:
    sandbox = EgressSubnet("10.123.1.0/24").sandbox_ip
    assert ingress_forwards([("tcp", 8080), ("tcp", 8080)], sandbox) == [
        HostForward("tcp", 8080, "10.123.1.2", 8080)
    ]


def test_inspect_of_the_egress_network_shows_the_host_s_subnet() -> None:
    shown = render.gwbridge("g" * 64, [], EgressSubnet("10.123.1.0/24"))
    assert shown["Name"] == "ferry_gwbridge"
    assert shown["IPAM"]["Config"] == [{"Subnet": "10.123.1.0/24", "Gateway": "10.123.1.1"}]
    assert shown["Containers"]["ingress-sbox"]["IPv4Address"] == "10.123.1.2/24"
