"""Send a recorded request to the server again.

:func:`replay_request` blocks; the app runs it in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from textual.message import Message

from devserver.ipc.events import RequestEvent
from tui.recorded.bodies import exact_request_body

if TYPE_CHECKING:
    import ssl

# RFC 9110 §7.6.1: connection-specific fields are not forwarded.  Content-Length
# is set from the body sent (the same, as only whole bodies are replayed), and
# Expect is dropped because the body is sent at once.
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
    """A screen asks the app to send ``request`` (bubbles up to the app).

    ``original``: the recorded request an edited copy comes from (the diff is against it).
    """

    def __init__(self, request: RequestEvent, original: RequestEvent | None = None, body: bytes | None = None) -> None:
        super().__init__()
        self.request = request
        self.original = original
        self.body = body  # an edited body (else the recorded one, which must be whole)


class ReplayLinks:
    """Which logged requests are replays, and of what (bounded; UI thread only).

    A replay is announced by the local address it sends from; the server's
    event for it carries that address as its client, which links the two.
    """

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._pending: dict[str, RequestEvent] = {}
        self._links: dict[int, tuple[RequestEvent, RequestEvent]] = {}  # id(replay) -> (replay, original)

    def expect(self, client: str, *, original: RequestEvent) -> None:
        """A replay of ``original`` is about to be sent from ``client``."""
        self._pending[client] = original
        while len(self._pending) > self.limit:
            del self._pending[next(iter(self._pending))]

    def observe(self, requests: list[RequestEvent]) -> None:
        """Link newly logged requests that are replays."""
        if not self._pending:
            return
        for request in requests:
            if (original := self._pending.pop(request.client, None)) is not None:
                self._links[id(request)] = (request, original)
                while len(self._links) > self.limit:
                    del self._links[next(iter(self._links))]

    def original_of(self, request: RequestEvent) -> RequestEvent | None:
        """The request ``request`` replayed, if it is a replay."""
        link = self._links.get(id(request))
        return link[1] if link is not None and link[0] is request else None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """How the server answered the replayed request."""

    status: int
    reason: str
    bytes_received: int
    duration_ms: float
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    client: str = ""  # "host:port" the replay came from: the server's event for it has this client


def server_address(url: str) -> tuple[str, int]:
    """The host and port to connect to for the server at ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return _CONNECTABLE.get(host, host), parts.port or (443 if parts.scheme == "https" else 80)


def replay_headers(event: RequestEvent) -> list[tuple[str, str]]:
    """The recorded request headers minus hop-by-hop ones (and any the Connection header names)."""
    named = {
        token.strip().lower()
        for name, value in event.request_headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(n, v) for n, v in event.request_headers if n.lower() not in HOP_BY_HOP | named]


def replay_request(
    event: RequestEvent,
    url: str,
    timeout: float = 10.0,
    *,
    sent: Callable[[str], None] | None = None,
    body: bytes | None = None,
    cafile: str = "",
) -> ReplayResult:
    """Send ``event``'s method, target, headers and exact body to the server at ``url``.

    Raises :class:`~tui.recorded.bodies.BodyNotExact` when the body was cut (nothing
    is sent), ``OSError`` or ``http.client.HTTPException`` when the server
    cannot be reached or answers garbage.  ``sent`` is called with the local
    address once connected, before the request goes out.  ``body``
    replaces the recorded body (an edited request).  Over HTTPS the server's
    certificate is checked against ``cafile`` (devserver's CA); with none
    known (the user's own certificate), not checked: the dashboard replays
    to the server it started, on this machine.
    """
    body = exact_request_body(event) if body is None else body
    headers = replay_headers(event)
    names = {name.lower() for name, _ in headers}
    import http.client  # here: the dashboard's first paint does not wait for it (nor for the email package)

    conn = (http.client.HTTPSConnection(*server_address(url), timeout=timeout, context=_client_context(cafile))
            if url.startswith("https:") else http.client.HTTPConnection(*server_address(url), timeout=timeout))
    started = time.perf_counter()
    try:
        conn.connect()
        host, port = conn.sock.getsockname()[:2]
        client = f"{host}:{port}"
        if sent is not None:
            sent(client)
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
            headers=tuple(response.getheaders()),
            body=data,
            client=client,
        )
    finally:
        conn.close()


def _client_context(cafile: str) -> ssl.SSLContext:
    import ssl

    if cafile:
        return ssl.create_default_context(cafile=cafile)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
