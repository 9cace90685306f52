import pytest

from ferry.errors import InvalidArgument
from ferry.manager import ca
from ferry.manager.tokens import ca_digest, make_token, new_secret, parse_token


@pytest.fixture(scope="module")
def ca_der() -> bytes:
    return ca.ca_der(ca.create_ca("cluster1").cert_pem)


def test_a_token_round_trips_through_its_text(ca_der: bytes) -> None:
    token = make_token(ca_der, new_secret())
    text = str(token)
    assert text.startswith("SWMTKN-1-")
    assert parse_token(text) == token
    assert parse_token(f"  {text}\n") == token


def test_a_token_matches_only_the_ca_it_was_made_for(ca_der: bytes) -> None:
    token = make_token(ca_der, new_secret())
    other = ca.ca_der(ca.create_ca("cluster2").cert_pem)
    assert token.matches_ca(ca_der)
    assert not token.matches_ca(other)


def test_a_token_grants_only_its_own_secret(ca_der: bytes) -> None:
    secret = new_secret()
    token = make_token(ca_der, secret)
    assert token.grants(secret)
    assert not token.grants(new_secret())


def test_the_digest_has_a_fixed_length_and_alphabet(ca_der: bytes) -> None:
    digest = ca_digest(ca_der)
    assert len(digest) == 50
    assert set(digest) <= set("0123456789abcdefghijklmnopqrstuvwxyz")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "SWMTKN-2-" + "a" * 50 + "-" + "b" * 25,
        "SWMTKN-1-" + "a" * 49 + "-" + "b" * 25,
        "SWMTKN-1-" + "a" * 50 + "-" + "b" * 24,
        "SWMTKN-1-" + "A" * 50 + "-" + "b" * 25,
    ],
)
def test_malformed_tokens_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidArgument, match="join-token"):
        parse_token(text)
