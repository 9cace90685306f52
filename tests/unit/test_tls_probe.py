"""The integration tests' TLS probe (``tests/integration/probes/tls_probe.py``), against small
TLS servers on loopback that behave as etcd's ports do: what it calls answered, and refused.

The first server is the one that made the probe flaky: etcd's peer port answers at once, then
may hold the connection open for its 5 s read deadline; this one holds it until the client
leaves, so a probe that waits for the close never sees the answer.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferry.manager import ca
from tests.integration.probes import tls_probe

BODY = b'{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
Behaviour = Callable[[socket.socket, ssl.SSLContext], None]


@dataclass(frozen=True)
class Pki:
    server: tuple[Path, Path]  # cert, key
    trusted_ca: Path  # whose client certificates the server takes
    member: tuple[Path, Path]  # of trusted_ca
    stranger: tuple[Path, Path]  # of another CA


def _issue(directory: Path, name: str, authority: ca.KeyPair) -> tuple[Path, Path]:
    key_pem = ca.new_key_pem()
    cert_pem = ca.sign_store_member(authority, ca.make_csr(key_pem), name, "c0", ["127.0.0.1"])
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    store_ca = ca.create_ca("c0", ca.STORE_CA_NAME)
    trusted = directory / "store-ca.pem"
    trusted.write_bytes(store_ca.cert_pem)
    return Pki(
        server=_issue(directory, "server", store_ca),
        trusted_ca=trusted,
        member=_issue(directory, "member", store_ca),
        stranger=_issue(directory, "stranger", ca.create_ca("c0")),
    )


def _until_client_leaves(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass


def answer_and_linger(conn: socket.socket, ctx: ssl.SSLContext) -> None:
    """etcd's peer port: the whole answer at once, the close only when the client goes."""
    with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
        request = b""
        while b"\r\n\r\n" not in request:
            request += tls.recv(4096)
        tls.sendall(ANSWER)
        _until_client_leaves(tls)


def handshake_only(conn: socket.socket, ctx: ssl.SSLContext) -> None:
    """Refuses a client certificate of another CA in the handshake, as etcd does."""
    with contextlib.suppress(OSError), ctx.wrap_socket(conn, server_side=True) as tls:
        _until_client_leaves(tls)


def silent(conn: socket.socket, ctx: ssl.SSLContext) -> None:
    """Takes the connection and never says a word."""
    _until_client_leaves(conn)


@contextlib.contextmanager
def serving(pki: Pki, behaviour: Behaviour) -> Iterator[int]:
    """A one-connection TLS server on loopback; yields its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pki.server)
    ctx.load_verify_locations(pki.trusted_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                behaviour(conn, ctx)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield listener.getsockname()[1]
        thread.join(timeout=10)


def run_probe(port: int, holder: tuple[Path, Path]) -> dict[str, object]:
    return tls_probe.probe("127.0.0.1", port, str(holder[0]), str(holder[1]))


def test_an_answer_is_whole_at_its_length_though_the_server_keeps_the_connection(
    pki: Pki,
) -> None:
    with serving(pki, answer_and_linger) as port:
        result = run_probe(port, pki.member)
    assert result == {"answered": True, "status": 200, "refused": False, "error": ""}


def test_a_certificate_of_another_ca_is_refused(pki: Pki) -> None:
    with serving(pki, handshake_only) as port:
        result = run_probe(port, pki.stranger)
    assert (result["answered"], result["status"], result["refused"]) == (False, 0, True)
    assert result["error"]


def test_a_port_where_nothing_listens_is_not_a_refusal_of_the_certificate(pki: Pki) -> None:
    with socket.socket() as bound:  # bound, never listening: the connect is reset
        bound.bind(("127.0.0.1", 0))
        result = run_probe(bound.getsockname()[1], pki.member)
    assert (result["answered"], result["refused"]) == (False, False)
    assert str(result["error"]).startswith("ConnectionRefusedError")


def test_a_server_that_never_speaks_is_not_a_refusal_either(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls_probe, "TIMEOUT_S", 0.2)  # the silence would last forever
    with serving(pki, silent) as port:
        result = run_probe(port, pki.member)
    assert (result["answered"], result["refused"]) == (False, False)
    assert str(result["error"]).startswith("TimeoutError")
