"""Send a recorded request to the server again.

:func:`replay_request` blocks; the app runs it in a worker thread.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from textual.message import Message

from devserver.events import RequestEvent

# RFC 9110 §7.6.1: connection-specific fields are not forwarded.  Content-Length
# is recomputed because the recorded body is only a preview, and Expect is
# dropped because the body is sent at once.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
    }
)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

# A wildcard bind address is not something one can connect to.
_CONNECTABLE = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


class ReplayRequested(Message):
    """A screen asks the app to replay ``request`` (bubbles up to the app)."""

    def __init__(self, request: RequestEvent) -> None:
        super().__init__()
        self.request = request


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """How the server answered the replayed request."""

    status: int
    reason: str
    bytes_received: int
    duration_ms: float


def server_address(url: str) -> tuple[str, int]:
    """The host and port to connect to for the server at ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return _CONNECTABLE.get(host, host), parts.port or 80


def replay_headers(event: RequestEvent) -> list[tuple[str, str]]:
    """The recorded request headers minus hop-by-hop ones (and any the Connection header names)."""
    named = {
        token.strip().lower()
        for name, value in event.request_headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(n, v) for n, v in event.request_headers if n.lower() not in HOP_BY_HOP | named]


def replay_request(event: RequestEvent, url: str, timeout: float = 10.0) -> ReplayResult:
    """Send ``event``'s method, target, headers and body preview to the server at ``url``.

    Raises ``OSError`` or ``http.client.HTTPException`` when the server
    cannot be reached or answers garbage.
    """
    headers = replay_headers(event)
    names = {name.lower() for name, _ in headers}
    body = event.body_preview
    conn = http.client.HTTPConnection(*server_address(url), timeout=timeout)
    started = time.perf_counter()
    try:
        conn.putrequest(
            event.method,
            event.target or "/",
            skip_host="host" in names,
            skip_accept_encoding=True,  # replay faithfully: no added Accept-Encoding
        )
        for name, value in headers:
            conn.putheader(name, value)
        if body or event.method.upper() in _BODY_METHODS:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        data = response.read()
        return ReplayResult(
            status=response.status,
            reason=response.reason,
            bytes_received=len(data),
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    finally:
        conn.close()
