"""Docker's lookup rule, once for networks, services and nodes."""

import pytest

from ferry.errors import InvalidArgument
from ferry.model.ids import lookup

ITEMS = [("abc123", "web"), ("abd456", "db"), ("fff000", "abc")]


def find(ref: str) -> tuple[str, str] | None:
    return lookup(ITEMS, ref, lambda item: item, "thing")


def test_a_full_id_or_name_wins_over_a_prefix() -> None:
    assert find("web") == ("abc123", "web")
    assert find("abc") == ("fff000", "abc")  # a name, although it also prefixes an id
    assert find("abd") == ("abd456", "db")


def test_an_ambiguous_prefix_or_a_shared_name_is_an_error_and_nothing_is_none() -> None:
    with pytest.raises(InvalidArgument, match="ambiguous"):
        find("ab")
    with pytest.raises(InvalidArgument, match="use the ID"):
        lookup([*ITEMS, ("999", "web")], "web", lambda item: item, "thing")
    assert find("zzz") is None
    assert find("") is None
