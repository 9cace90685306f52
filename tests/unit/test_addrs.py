import pytest

from ferry.daemon.addrs import choose_advertise_addr, with_port
from ferry.errors import InvalidArgument

LAB = [("lo", "127.0.0.1"), ("eth0", "10.99.0.11")]
MULTI = [("lo", "127.0.0.1"), ("eth0", "10.99.0.11"), ("eth1", "192.168.5.2")]


def test_an_explicit_ip_is_taken_as_is() -> None:
    assert choose_advertise_addr("10.99.0.11", LAB, None) == "10.99.0.11"
    assert choose_advertise_addr("10.99.0.11:2377", LAB, None) == "10.99.0.11"


def test_an_interface_name_means_its_address() -> None:
    assert choose_advertise_addr("eth1", MULTI, None) == "192.168.5.2"


def test_without_a_choice_the_only_address_wins() -> None:
    assert choose_advertise_addr("", LAB, None) == "10.99.0.11"


def test_without_a_choice_the_default_route_interface_wins() -> None:
    assert choose_advertise_addr("", MULTI, "eth1") == "192.168.5.2"


def test_several_addresses_and_no_default_route_ask_the_user() -> None:
    with pytest.raises(InvalidArgument, match="--advertise-addr"):
        choose_advertise_addr("", MULTI, None)


def test_an_unknown_interface_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        choose_advertise_addr("wlan9", LAB, None)


def test_with_port_adds_the_default_only_when_missing() -> None:
    assert with_port("10.0.0.1", 2377) == "10.0.0.1:2377"
    assert with_port("10.0.0.1:4000", 2377) == "10.0.0.1:4000"
