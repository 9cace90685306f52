import pytest

from ferry.errors import InvalidArgument, PoolExhausted, SubnetOverlap
from ferry.network import ipam


def test_subnets_come_from_the_pool_in_order_skipping_used_ones() -> None:
    assert ipam.choose_subnet("10.0.0.0/8", 24, []) == "10.0.0.0/24"
    assert ipam.choose_subnet("10.0.0.0/8", 24, ["10.0.0.0/24", "10.0.1.0/24"]) == "10.0.2.0/24"
    assert ipam.choose_subnet("10.0.0.0/8", 24, ["10.0.0.0/23"]) == "10.0.2.0/24"


def test_an_exhausted_pool_says_so() -> None:
    with pytest.raises(PoolExhausted, match="exhausted"):
        ipam.choose_subnet("10.1.0.0/23", 24, ["10.1.0.0/24", "10.1.1.0/24"])


def test_overlapping_subnets_are_refused_naming_the_other_network() -> None:
    taken = [("blue", "10.0.1.0/24")]
    with pytest.raises(SubnetOverlap, match="blue"):
        ipam.check_no_overlap(ipam.parse_subnet("10.0.0.0/16"), taken)
    ipam.check_no_overlap(ipam.parse_subnet("10.0.2.0/24"), taken)


@pytest.mark.parametrize("text", ["10.300.0.0/24", "10.0.0.1/24", "fd00::/64", "10.0.0.0/31", "x"])
def test_bad_subnets_are_invalid_arguments(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ipam.parse_subnet(text)


def test_a_gateway_must_be_a_usable_address_of_the_subnet() -> None:
    net = ipam.parse_subnet("10.0.5.0/24")
    assert ipam.default_gateway(net) == "10.0.5.1"
    assert ipam.check_gateway(net, "10.0.5.254") == "10.0.5.254"
    for bad in ("10.0.6.1", "10.0.5.0", "10.0.5.255", "nonsense"):
        with pytest.raises(InvalidArgument):
            ipam.check_gateway(net, bad)


def test_addresses_are_handed_out_lowest_first_never_the_gateway() -> None:
    assert ipam.next_free("10.0.5.0/24", "10.0.5.1", "", set()) == "10.0.5.2"
    assert ipam.next_free("10.0.5.0/24", "10.0.5.1", "", {"10.0.5.2"}) == "10.0.5.3"
    assert ipam.next_free("10.0.5.0/24", "10.0.5.2", "", set()) == "10.0.5.1"


def test_an_ip_range_limits_where_addresses_come_from() -> None:
    assert ipam.next_free("10.0.5.0/24", "10.0.5.1", "10.0.5.128/25", set()) == "10.0.5.128"
    with pytest.raises(InvalidArgument, match="inside"):
        ipam.check_ip_range(ipam.parse_subnet("10.0.5.0/24"), "10.0.6.0/25")


def test_a_full_subnet_raises_pool_exhausted() -> None:
    with pytest.raises(PoolExhausted, match="no free address"):
        ipam.next_free("10.0.5.0/30", "10.0.5.1", "", {"10.0.5.2"})


def test_static_addresses_are_checked() -> None:
    assert ipam.check_static_ip("10.0.5.0/24", "10.0.5.1", "10.0.5.9", set()) == "10.0.5.9"
    with pytest.raises(InvalidArgument, match="outside"):
        ipam.check_static_ip("10.0.5.0/24", "10.0.5.1", "10.0.6.9", set())
    with pytest.raises(InvalidArgument, match="reserved"):
        ipam.check_static_ip("10.0.5.0/24", "10.0.5.1", "10.0.5.1", set())
    with pytest.raises(InvalidArgument, match="already in use"):
        ipam.check_static_ip("10.0.5.0/24", "10.0.5.1", "10.0.5.9", {"10.0.5.9"})


def test_macs_are_derived_from_addresses() -> None:
    assert ipam.mac_for("10.0.1.3") == "02:42:0a:00:01:03"


def test_vnis_start_at_4097_and_skip_used_ones() -> None:
    assert ipam.next_vni(4097, []) == 4097
    assert ipam.next_vni(4097, [4097, 4098, 4100]) == 4099
