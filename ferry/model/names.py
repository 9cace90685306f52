"""Random container names in Docker's style (adjective_scientist)."""

from __future__ import annotations

import secrets

ADJECTIVES = (
    "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid",
    "merry", "nifty", "quirky", "serene", "sharp", "steady", "sweet", "tender", "vibrant", "wise",
)  # fmt: skip
SCIENTISTS = (
    "babbage", "curie", "darwin", "einstein", "euler", "faraday", "gauss", "hopper", "hypatia",
    "kepler", "lamarr", "lovelace", "maxwell", "meitner", "newton", "noether", "pasteur",
    "ritchie", "shannon", "turing",
)  # fmt: skip


def random_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SCIENTISTS)}"
        if name not in taken:
            return name
    return f"{secrets.choice(ADJECTIVES)}_{secrets.choice(SCIENTISTS)}_{secrets.token_hex(2)}"
