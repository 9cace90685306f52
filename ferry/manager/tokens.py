"""Join tokens in Docker's shape: ``SWMTKN-1-<CA digest>-<secret>``.

The digest (SHA-256 of the CA certificate, base 36) lets a joining node verify the manager it
dials before it sends anything; the secret says which role the token grants.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from ferry.errors import InvalidArgument

PREFIX = "SWMTKN-1"
_DIGEST_LEN = 50
_SECRET_LEN = 25
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN_RE = re.compile(rf"^{PREFIX}-([0-9a-z]{{{_DIGEST_LEN}}})-([0-9a-z]{{{_SECRET_LEN}}})$")


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits)).rjust(width, "0")[-width:]


def ca_digest(ca_der: bytes) -> str:
    return _base36(int.from_bytes(hashlib.sha256(ca_der).digest(), "big"), _DIGEST_LEN)


def new_secret() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LEN))


@dataclass(frozen=True)
class JoinToken:
    digest: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}-{self.digest}-{self.secret}"

    def matches_ca(self, ca_der: bytes) -> bool:
        return hmac.compare_digest(self.digest, ca_digest(ca_der))

    def grants(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret, secret)


def make_token(ca_der: bytes, secret: str) -> JoinToken:
    return JoinToken(ca_digest(ca_der), secret)


def parse_token(text: str) -> JoinToken:
    match = _TOKEN_RE.match(text.strip())
    if match is None:
        raise InvalidArgument(
            "invalid join token: expected SWMTKN-1-<digest>-<secret>, as printed by "
            "'ferry swarm join-token worker'"
        )
    return JoinToken(match.group(1), match.group(2))
