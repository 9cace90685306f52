"""Structured logs: one logfmt line per event (``ts= level= logger= msg= key=value…``)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts += [f"{k}={_quote(str(v))}" for k, v in fields.items()]
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def _quote(text: str) -> str:
    if text and not any(c in text for c in ' ="\n'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class MalformedRequestFilter(logging.Filter):
    """aiohttp answers a request it cannot parse (a request line or header too long, bytes
    that are not HTTP) with a 400 itself, and logs the parser's exception with its traceback.
    The fault is the client's: one warning line says so, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args, record.exc_info = "malformed HTTP request refused", (), None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.fields = {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        return True


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # gRPC and aiohttp access logs are noise at info level
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(MalformedRequestFilter())


def kv(**fields: Any) -> dict[str, Any]:
    """``log.info("msg", extra=kv(node=…))``: structured fields for one log line."""
    return {"fields": fields}
