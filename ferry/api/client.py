"""A small synchronous client of ferryd's local API (the Docker Engine API subset).

Synchronous and stdlib-only on purpose: the CLI starts fast and needs one request at a time.
Errors come back as Ferry's error kinds, rebuilt from the HTTP status, with the daemon's message.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlencode

from ferry.errors import FerryError, Unavailable, from_status

DEFAULT_HOST = "unix:///run/ferry/ferryd.sock"


def default_host() -> str:
    return os.environ.get("FERRY_HOST") or DEFAULT_HOST


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout_s: float | None) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise Unavailable(f"unsupported host {host!r}: ferry talks to ferryd over unix://PATH")
    return host[len("unix://") :]


class ApiClient:
    def __init__(self, host: str | None = None, timeout_s: float | None = 60.0) -> None:
        self.host = host or default_host()
        self.path = socket_path(self.host)
        self.timeout_s = timeout_s

    def _connect(self, timeout_s: float | None) -> _UnixConnection:
        return _UnixConnection(self.path, timeout_s)

    def _request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        timeout_s: float | None,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        if query:
            clean = {k: _query_value(v) for k, v in query.items() if v is not None}
            if clean:
                path += "?" + urlencode(clean)
        headers = {"Host": "ferryd", **(extra_headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connect(timeout_s)
        try:
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise _error(resp.status, raw)
        return conn, resp

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        timeout_s: float | None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        try:
            return self._request(method, path, query, body, timeout_s, extra_headers=headers)
        except FileNotFoundError as exc:
            raise Unavailable(
                f"cannot connect to ferryd at {self.host}: no socket (is ferryd running?)"
            ) from exc
        except ConnectionRefusedError as exc:
            raise Unavailable(
                f"cannot connect to ferryd at {self.host}: connection refused"
            ) from exc
        except PermissionError as exc:
            raise Unavailable(
                f"cannot connect to ferryd at {self.host}: permission denied (run as root)"
            ) from exc
        except TimeoutError as exc:
            raise Unavailable(f"ferryd at {self.host} did not answer in time") from exc
        except OSError as exc:
            raise Unavailable(f"cannot talk to ferryd at {self.host}: {exc}") from exc

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        conn, resp = self._send(
            method, path, query, body, timeout_s or self.timeout_s, headers=headers
        )
        try:
            raw = resp.read()
        finally:
            conn.close()
        if not raw:
            return None
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return json.loads(raw)
        return raw.decode(errors="replace")

    def begin(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None
    ) -> PendingResponse:
        """Send a request and return once the response headers arrived; read the body later
        (Docker's ``wait`` answers its headers at once and its body when a container ends)."""
        conn, resp = self._send(method, path, query, None, None)
        return PendingResponse(conn, resp)

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.call("POST", path, query=query, body=body)

    def delete(self, path: str, **query: Any) -> Any:
        return self.call("DELETE", path, query=query)

    def stream(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> Iterator[bytes]:
        """Yield chunks of a streamed response as they arrive (logs -f, progress)."""
        conn, resp = self._send(method, path, query, body, None)
        try:
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    return
                yield chunk
        finally:
            conn.close()

    def upload(
        self, path: str, body: BinaryIO, method: str = "POST", *, lines: bool = False, **query: Any
    ) -> Any:
        """Send a file as the request body, streamed (image import and load, cp into a
        container); ``lines``: the answer is a JSON message stream, returned as a list."""
        clean = {k: _query_value(v) for k, v in query.items() if v is not None}
        if clean:
            path += "?" + urlencode(clean)
        conn = self._connect(None)
        try:
            size = os.fstat(body.fileno()).st_size
            conn.request(
                method,
                path,
                body=body,
                headers={
                    "Host": "ferryd",
                    "Content-Type": "application/x-tar",
                    "Content-Length": str(size),
                },
            )
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as exc:
            raise Unavailable(f"cannot talk to ferryd at {self.host}: {exc}") from exc
        finally:
            conn.close()
        if resp.status >= 400:
            raise _error(resp.status, raw)
        if lines:  # Docker's JSON message stream (load): one object per line
            return [json.loads(line) for line in raw.splitlines() if line.strip()]
        return json.loads(raw) if raw else None

    def ping(self) -> None:
        conn, resp = self._send("GET", "/_ping", None, None, self.timeout_s)
        resp.read()
        conn.close()

    def hijack(self, path: str, body: Any) -> socket.socket:
        """POST with ``Upgrade: tcp`` and return the raw socket once the daemon switched over."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise Unavailable(f"cannot connect to ferryd at {self.host}: {exc}") from exc
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: ferryd\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        ).encode()
        sock.sendall(head + payload)
        header = b""
        while b"\r\n\r\n" not in header:
            chunk = sock.recv(1)
            if not chunk:
                sock.close()
                raise Unavailable("ferryd closed the connection during exec start")
            header += chunk
        status = int(header.split(b" ", 2)[1])
        if status >= 400:
            rest = sock.recv(65536)
            sock.close()
            body_start = rest.find(b"{")
            raise _error(status, rest[body_start:] if body_start >= 0 else rest)
        return sock


class PendingResponse:
    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp

    def json(self) -> Any:
        try:
            return json.loads(self._resp.read())
        finally:
            self._conn.close()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _error(status: int, raw: bytes) -> FerryError:
    try:
        message = json.loads(raw).get("message", "")
    except (ValueError, AttributeError):
        message = raw.decode(errors="replace").strip()
    return from_status(status, message or f"ferryd answered HTTP {status}")
