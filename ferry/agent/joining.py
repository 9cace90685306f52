"""The joiner's half of ``swarm join``: trust the manager only if it proves the token's CA.

1. Fetch the manager's CA certificate without trusting anything yet.
2. Compare its digest with the one in the token: a mismatch means a wrong token or an impostor,
   and nothing is sent.
3. Send the token and a CSR over TLS pinned to that CA; receive a node certificate.
"""

from __future__ import annotations

import ssl

import aiohttp

from ferry.agent.link import manager_url, raise_for
from ferry.errors import Forbidden, Unavailable
from ferry.manager import ca
from ferry.manager.root_ca import vouched
from ferry.manager.tokens import JoinToken
from ferry.manager.wire import JoinRequest, JoinResponse
from ferry.model.root_rotation import bundle

JOIN_TIMEOUT_S = 10.0


async def fetch_ca(addr: str, token: JoinToken) -> tuple[bytes, str]:
    """The manager's CA (verified against the token) and our address as the manager sees it."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    timeout = aiohttp.ClientTimeout(total=JOIN_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(manager_url(addr) + "/v1/ca", ssl=insecure) as resp,
        ):
            # read our own address before the body: the connection is released after it
            transport = resp.connection.transport if resp.connection else None
            sockname = transport.get_extra_info("sockname") if transport else None
            await raise_for(resp)
            document = await resp.json()
            ca_pem = str(document["ca_pem"]).encode()
    except TimeoutError as exc:
        raise Unavailable(
            f"could not reach a manager at {addr} within {JOIN_TIMEOUT_S:.0f}s: timed out"
        ) from exc
    except (aiohttp.ClientError, OSError) as exc:
        os_error = getattr(exc, "os_error", None)
        reason = os_error.strerror if isinstance(os_error, OSError) and os_error.strerror else exc
        raise Unavailable(f"could not reach a manager at {addr}: {reason}") from exc
    if not token.matches_ca(ca.ca_der(ca_pem)):
        raise Forbidden(
            f"the manager at {addr} does not hold this token's CA: wrong token or wrong address"
        )
    return _with_new_root(ca_pem, document), sockname[0] if sockname else ""


def _with_new_root(ca_pem: bytes, document: dict[str, str]) -> bytes:
    """The roots to trust while joining: the token's, and during a root CA rotation the new
    one too, if the token's root vouches for it (``root_ca.vouched``); a new root it does not
    vouch for is refused (Forbidden), as a manager that is not the swarm's would be."""
    new_pem = str(document.get("new_ca_pem", "")).encode()
    if not new_pem:
        return ca_pem
    if not vouched(ca_pem, str(document.get("cross_signed_pem", "")).encode(), new_pem):
        raise Forbidden("the manager offers a new root CA that the swarm's root does not vouch for")
    return bundle(ca_pem.decode(), new_pem.decode()).encode()


async def request_join(addr: str, ca_pem: bytes, request: JoinRequest) -> JoinResponse:
    pinned = ssl.create_default_context(cadata=ca_pem.decode())
    pinned.check_hostname = False
    timeout = aiohttp.ClientTimeout(total=60.0)  # a manager join waits for the store to grow
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                manager_url(addr) + "/v1/join", data=request.model_dump_json(), ssl=pinned
            ) as resp,
        ):
            await raise_for(resp)
            return JoinResponse.model_validate_json(await resp.read())
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise Unavailable(f"join request to {addr} failed: {exc}") from exc
