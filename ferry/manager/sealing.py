"""The unlock key (the managers' key-encryption key, KEK) and what it seals.

The CA keys live in the store sealed with the KEK: AES-256-GCM from ``cryptography`` (a fresh
96-bit nonce per seal; the purpose of the sealed value is the associated data, so a sealed store
CA key cannot be passed off as the cluster CA key). Only managers hold the KEK: in memory, and on
disk (``certs/kek``, 0600) unless the swarm is autolocked.

The key's text form is Docker's: ``SWMKEY-1-`` and the 32 bytes in unpadded standard base64
(swarmkit's ``HumanReadableKey``), 52 characters in all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ferry.errors import Forbidden, InvalidArgument

PREFIX = "SWMKEY-1-"
KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_PREFIX = "aesgcm1:"

# what a sealed value is, bound into its seal (the associated data)
CLUSTER_CA_KEY = "cluster-ca-key"
STORE_CA_KEY = "store-ca-key"
NEXT_KEK = "next-kek"
DATA_KEY = "secrets-data-key"
ROTATION_CA_KEY = "rotation-ca-key"  # the new root's key during a root CA rotation


def secret_purpose(secret_id: str) -> str:
    """The associated data of one swarm secret's sealed data: it opens as that secret only."""
    return f"secret:{secret_id}"


class WrongUnlockKey(Forbidden):
    """The key does not open what the store holds (Docker answers 401 with this text)."""

    def __init__(self) -> None:
        super().__init__("swarm could not be unlocked: invalid key provided")


def new_kek() -> bytes:
    """A fresh 256-bit key: a KEK, or the data key of swarm secrets."""
    return os.urandom(KEY_BYTES)


def format_key(kek: bytes) -> str:
    """``SWMKEY-1-<base64>``, as ``docker swarm unlock-key`` prints it."""
    return PREFIX + base64.b64encode(kek).decode().rstrip("=")


def parse_key(text: str) -> bytes:
    """The KEK in a key's text form; InvalidArgument (Docker: "invalid key string") if it is
    not one."""
    text = text.strip()
    body = text[len(PREFIX) :] if text.startswith(PREFIX) else ""
    try:
        kek = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        kek = b""
    if len(kek) != KEY_BYTES:
        raise InvalidArgument(
            "invalid key string: an unlock key is SWMKEY-1- and 43 more characters, as "
            "'swarm unlock-key' prints it"
        )
    return kek


def key_id(kek: bytes) -> str:
    """A name for a KEK that reveals nothing of it: which key sealed what the store holds."""
    return hashlib.sha256(b"ferry-kek-id\0" + kek).hexdigest()[:16]


def seal(kek: bytes, plaintext: bytes, purpose: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(kek).encrypt(nonce, plaintext, purpose.encode())
    return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(kek: bytes, sealed: str, purpose: str) -> bytes:
    """Open a sealed value; WrongUnlockKey if this KEK (or this purpose) did not seal it."""
    if not sealed.startswith(SEALED_PREFIX):
        raise InvalidArgument(f"sealed value of {purpose} is not in a known format")
    raw = base64.b64decode(sealed[len(SEALED_PREFIX) :])
    try:
        return AESGCM(kek).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
    except InvalidTag as exc:
        raise WrongUnlockKey() from exc
