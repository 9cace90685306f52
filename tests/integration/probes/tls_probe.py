"""Run inside a lab host: does HOST:PORT take this client certificate? Prints one JSON line:
{"answered": bool, "status": HTTP status or 0, "refused": bool, "error": what failed}.

``refused`` is the server turning the certificate away: the TCP connection was made, then the
server ended it (a TLS alert, a close or a reset) without an answer. A port where nothing
listens, or one that never says anything, is neither answered nor refused.

The server's certificate is not checked (someone holding a stolen certificate would not care):
the question is only what the server accepts. A GET of /version over TLS is enough: etcd's
client and peer ports both answer it once they accept the certificate.

Be aware: the answer is read by its own framing (status line, headers, Content-Length), never
by waiting for the server to close. etcd's peer port is a rafthttp timeout listener that sets a
5 s read deadline on each read, so after answering a ``Connection: close`` request within
milliseconds it often closes only when that deadline ends, 5 s later; a reader that waits for
the close then races its own timeout. HTTP/1.1 (RFC 9112, section 6.3) ends a message with a
Content-Length at its length, not at the close.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import sys

TIMEOUT_S = 5.0
REQUEST = b"GET /version HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n"


def probe(host: str, port: int, cert: str, key: str) -> dict[str, object]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    try:
        raw = socket.create_connection((host, port), timeout=TIMEOUT_S)
    except OSError as exc:
        return _failed(exc, connected=False)
    try:
        with raw, ctx.wrap_socket(raw) as tls:
            tls.sendall(REQUEST)
            response = http.client.HTTPResponse(tls)
            response.begin()
            response.read()  # the body, to its length: whole before the server closes
    except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
        return _failed(exc, connected=True)
    return {"answered": True, "status": response.status, "refused": False, "error": ""}


def _failed(exc: Exception, *, connected: bool) -> dict[str, object]:
    # With TLS 1.3 a refused client certificate shows only after the handshake, on the first
    # read: as an alert, an EOF or a reset, whichever the server's close leaves on the wire.
    refused = connected and not isinstance(exc, TimeoutError)
    error = f"{type(exc).__name__}: {exc}"
    return {"answered": False, "status": 0, "refused": refused, "error": error}


if __name__ == "__main__":
    host, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    print(json.dumps(probe(host, port, cert, key)))
