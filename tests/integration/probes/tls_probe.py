"""Run inside a lab host: does HOST:PORT take this client certificate? Prints one JSON line:
{"answered": bool, "status": HTTP status or 0, "error": what TLS said}.

The server's certificate is not checked (someone holding a stolen certificate would not care):
the question is only what the server accepts. A GET of /version over TLS is enough: etcd's
client and peer ports both answer it once they accept the certificate.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys


def probe(host: str, port: int, cert: str, key: str) -> dict[str, object]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    request = b"GET /version HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n"
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            tls.sendall(request)
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    except (ssl.SSLError, OSError) as exc:
        return {"answered": False, "status": 0, "error": f"{type(exc).__name__}: {exc}"}
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return {"answered": bool(data), "status": status, "error": ""}


if __name__ == "__main__":
    host, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    print(json.dumps(probe(host, port, cert, key)))
