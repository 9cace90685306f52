"""Local (bridge, macvlan) networks as plain data: the checks, the subnet choice, the rules."""

from __future__ import annotations

import pytest

from ferry.errors import Conflict, InvalidArgument, NotFound, SubnetOverlap
from ferry.model.network import Driver, Network, NetworkRequest, Scope
from ferry.network import bridges
from ferry.network.local import (
    BRIDGE_NAME_OPTION,
    HostFacts,
    bridge_device,
    plan_local_network,
)

HOST = HostFacts(links=frozenset({"lo", "eth0", "eth1"}), routes=("10.99.0.0/24",))


def plan(
    req: NetworkRequest,
    known: list[Network] | None = None,
    host: HostFacts = HOST,
    egress: str | None = "172.18.0.0/16",  # the egress bridge's, as Docker's default pools give
) -> Network:
    return plan_local_network(
        req, f"{len(known or [])}" * 64, "2026-01-01T00:00:00Z", known or [], host, egress=egress
    )


def bridge(
    name: str, subnet: str, *, internal: bool = False, options: dict[str, str] | None = None
) -> Network:
    gateway = subnet.rsplit(".", 2)[0] + ".0.1"
    return Network(
        name * 64,
        name,
        Driver.BRIDGE,
        Scope.LOCAL,
        subnet,
        gateway,
        internal=internal,
        options=options or {},
    )


def test_bridge_networks_take_docker_s_local_pools_in_order_around_what_exists() -> None:
    first = plan(NetworkRequest("a", "bridge"))
    assert (first.subnet, first.gateway, first.scope) == (
        "172.17.0.0/16",
        "172.17.0.1",
        Scope.LOCAL,
    )
    # 172.18.0.0/16 is the egress bridge's, a host route blocks 172.19
    host = HostFacts(links=HOST.links, routes=("172.19.4.0/24",))
    second = plan(NetworkRequest("b", "bridge"), [first], host)
    assert second.subnet == "172.20.0.0/16"


def test_when_the_172_pool_is_full_bridges_get_192_168_slash_20s() -> None:
    taken = tuple(f"172.{n}.0.0/16" for n in range(16, 32))
    net = plan(NetworkRequest("a", "bridge"), host=HostFacts(HOST.links, taken))
    assert net.subnet == "192.168.0.0/20"


def test_a_given_subnet_may_not_overlap_a_known_network_or_the_egress_bridge() -> None:
    known = [bridge("x", "172.17.0.0/16")]
    with pytest.raises(SubnetOverlap, match="'x'"):
        plan(NetworkRequest("a", "bridge", subnet="172.17.3.0/24"), known)
    with pytest.raises(SubnetOverlap, match="ferry_gwbridge"):
        plan(NetworkRequest("a", "bridge", subnet="172.18.0.0/24"))
    assert plan(
        NetworkRequest("a", "bridge", subnet="10.5.0.0/24", gateway="10.5.0.254")
    ).gateway == ("10.5.0.254")


def test_names_are_unique_and_drivers_known() -> None:
    with pytest.raises(Conflict, match="already exists"):
        plan(NetworkRequest("x", "bridge"), [bridge("x", "172.17.0.0/16")])
    with pytest.raises(InvalidArgument, match="unknown network driver 'weave'"):
        plan(NetworkRequest("a", "weave"))
    with pytest.raises(InvalidArgument, match="invalid network name"):
        plan(NetworkRequest("-a", "bridge"))
    with pytest.raises(InvalidArgument, match="ingress"):
        plan(NetworkRequest("a", "bridge", ingress=True))


def test_bridge_options_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="unknown bridge option"):
        plan(NetworkRequest("a", "bridge", options={"parent": "eth0"}))
    with pytest.raises(InvalidArgument, match="true or false"):
        plan(NetworkRequest("a", "bridge", options={"com.docker.network.bridge.enable_icc": "no"}))
    with pytest.raises(InvalidArgument, match="mtu"):
        plan(NetworkRequest("a", "bridge", options={"mtu": "9"}))
    with pytest.raises(Conflict, match="eth1 is already in use"):
        plan(NetworkRequest("a", "bridge", options={BRIDGE_NAME_OPTION: "eth1"}))
    named = plan(NetworkRequest("a", "bridge", options={BRIDGE_NAME_OPTION: "br-lab"}))
    assert bridge_device(named) == "br-lab"
    assert bridge_device(plan(NetworkRequest("a", "bridge"))) == "fbr-0000000000"


def test_macvlan_needs_an_existing_parent_of_its_own_and_the_lan_s_subnet() -> None:
    with pytest.raises(InvalidArgument, match="parent=IFACE"):
        plan(NetworkRequest("m", "macvlan", subnet="10.99.0.0/24"))
    with pytest.raises(NotFound, match="eth7"):
        plan(NetworkRequest("m", "macvlan", subnet="10.99.0.0/24", options={"parent": "eth7"}))
    with pytest.raises(InvalidArgument, match="needs --subnet"):
        plan(NetworkRequest("m", "macvlan", options={"parent": "eth0"}))
    with pytest.raises(InvalidArgument, match="bridge mode"):
        plan(
            NetworkRequest(
                "m",
                "macvlan",
                subnet="10.99.0.0/24",
                options={"parent": "eth0", "macvlan_mode": "vepa"},
            )
        )
    # the LAN's subnet is a host route, and that is the point
    net = plan(
        NetworkRequest(
            "m", "macvlan", subnet="10.99.0.0/24", gateway="10.99.0.1", options={"parent": "eth0"}
        )
    )
    assert (net.driver, net.gateway, net.options["macvlan_mode"]) == (
        Driver.MACVLAN,
        "10.99.0.1",
        "bridge",
    )
    with pytest.raises(Conflict, match="already uses parent interface eth0"):
        plan(
            NetworkRequest("m2", "macvlan", subnet="10.98.0.0/24", options={"parent": "eth0"}),
            [net],
        )


def test_rules_isolate_bridges_from_each_other_and_from_the_egress_bridge() -> None:
    a, b = bridge("a", "172.17.0.0/16"), bridge("b", "172.19.0.0/16")
    body = bridges.render([a, b])
    dev_a, dev_b = bridge_device(a), bridge_device(b)
    assert f'iifname "{dev_a}" oifname {{ "{dev_b}", "ferry_gwbridge" }} drop' in body
    assert f'iifname "{dev_b}" oifname {{ "{dev_a}", "ferry_gwbridge" }} drop' in body
    assert f'iifname "ferry_gwbridge" oifname {{ "{dev_a}", "{dev_b}" }} drop' in body
    assert f'ip saddr 172.17.0.0/16 oifname != "{dev_a}" masquerade' in body
    assert bridges.render([]) == ""


def test_an_internal_bridge_routes_nothing_and_masquerade_can_be_turned_off() -> None:
    internal = bridge("i", "172.17.0.0/16", internal=True)
    quiet = bridge(
        "q", "172.19.0.0/16", options={"com.docker.network.bridge.enable_ip_masquerade": "false"}
    )
    body = bridges.render([internal, quiet])
    dev = bridge_device(internal)
    assert f'iifname "{dev}" oifname != "{dev}" drop' in body
    assert f'oifname "{dev}" iifname != "{dev}" drop' in body
    assert "172.17.0.0/16" not in body and "172.19.0.0/16" not in body


@pytest.mark.parametrize("subnet", ["10.99.0.0/24", "10.99.0.64/26", "10.96.0.0/14"])
def test_a_given_bridge_subnet_may_not_overlap_a_host_route(subnet: str) -> None:
    # the host's LAN (10.99.0.0/24): a second connected route for it would capture its traffic
    with pytest.raises(SubnetOverlap, match=r"host's route to 10\.99\.0\.0/24: .*overlapping IPv4"):
        plan(NetworkRequest("a", "bridge", subnet=subnet, gateway=""))
    assert plan(NetworkRequest("a", "bridge", subnet="10.98.0.0/24")).subnet == "10.98.0.0/24"
