"""HTTP/1.1 protocol logic: bytes in, requests out; responses out as bytes.

No sockets here (STYLE.md §1).  Parsing is done by llhttp through
``httptools``; this module adds what RFC 9112 asks of a server on top of it:
size limits, version checks, transfer-coding checks and response framing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate

import httptools

from . import __version__
from .pages import reason

SERVER = f"devserver/{__version__}".encode()
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
TCHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class ProtocolError(Exception):
    """A request the server refuses; carries the status to answer with (STYLE.md §3).

    After a protocol error the connection is always closed: the byte stream can
    no longer be trusted to be framed the way the client meant (RFC 9112 §9.6).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may make the server hold in memory."""

    max_request_line: int = 8 * 1024
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    max_body: int = 100 * 1024 * 1024


@dataclass(slots=True)
class Request:
    """A parsed request head.  Header names keep their case; values are latin-1 text."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    keep_alive: bool
    content_length: int | None = None
    chunked: bool = False
    expect_continue: bool = False
    path: str = field(init=False)
    query: str = field(init=False)

    def __post_init__(self) -> None:
        path, _, query = self.target.partition("?")
        self.path = path.partition("#")[0]
        self.query = query



# Events handed out by RequestParser.feed(), in wire order.
@dataclass(frozen=True, slots=True)
class Head:
    request: Request


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes


@dataclass(frozen=True, slots=True)
class End:
    pass


@dataclass(frozen=True, slots=True)
class Rejected:
    """The stream broke the protocol here; answer ``error`` and close."""

    error: ProtocolError


END = End()
ParserEvent = Head | Body | End | Rejected

# llhttp's messages → status, where it is not a plain 400 (RFC 9112 §2.3, §6.1).
_LLHTTP_STATUS = {
    "Invalid HTTP version": 505,
}


class RequestParser:
    """Turns a connection's byte stream into Head/Body/End events.

    Feed it whatever arrives, whole or in pieces; it raises ProtocolError on
    the first byte it will not accept.  Pipelined requests come out in order.
    """

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[ParserEvent] = []
        self._reset_head()
        self._idle = True  # between messages
        self._prefix = b""  # first bytes of the current message, to name a bad method
        self._body_bytes = 0
        self.upgraded = False  # llhttp stops at Upgrade/CONNECT; we then close
        self.rejected = False

    def _reset_head(self) -> None:
        self._url = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._in_head = False

    @property
    def in_head(self) -> bool:
        """True while a request head has begun but is not complete."""
        return self._in_head

    def feed(self, data: bytes) -> list[ParserEvent]:
        """Parse ``data``; return the events it completes.

        A protocol violation ends the list with a Rejected event, after the
        events of the requests that came before it; nothing is parsed after.
        """
        if self.upgraded or self.rejected:
            return []
        if self._idle and not self._prefix:
            self._prefix = data[:64]
        try:
            self._feed(data)
        except ProtocolError as exc:
            self.rejected = True
            self._events.append(Rejected(exc))
        events, self._events = self._events, []
        return events

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.upgraded = True
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ProtocolError):
                raise cause from None
            raise
        except httptools.HttpParserInvalidMethodError:
            token = self._prefix.split(b" ", 1)[0]
            if token and all(c in TCHARS for c in token):
                raise ProtocolError(501, "Method not implemented") from None
            raise ProtocolError(400, "Malformed request line") from None
        except httptools.HttpParserError as exc:
            raise self._translate(str(exc)) from None
        if self._in_head:
            self._head_bytes += len(data)
            if not self._headers and len(self._url) > self.limits.max_request_line:
                raise ProtocolError(414, "Request line too long")
            if self._head_bytes > self.limits.max_request_line + self.limits.max_header_bytes:
                raise ProtocolError(431, "Request header block too large")

    def _translate(self, message: str) -> ProtocolError:
        if "Transfer-Encoding" in message and self._unknown_coding():
            return ProtocolError(501, "Transfer coding not implemented")
        return ProtocolError(_LLHTTP_STATUS.get(message, 400), f"Bad request: {message}")

    def _unknown_coding(self) -> bool:
        for name, value in self._headers:
            if name.lower() == b"transfer-encoding":
                codings = [c.strip().lower() for c in value.split(b",")]
                if any(c and c != b"chunked" for c in codings):
                    return True
        return False

    # httptools callbacks -------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset_head()
        self._in_head = True
        self._idle = False
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_request_line:
            raise ProtocolError(414, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        if len(self._headers) > self.limits.max_header_count:
            raise ProtocolError(431, "Too many header fields")

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise ProtocolError(505, f"HTTP version {version} not supported")
        size = sum(len(n) + len(v) + 4 for n, v in self._headers)
        if size > self.limits.max_header_bytes:
            raise ProtocolError(431, "Request header block too large")
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._headers]
        request = Request(
            method=parser.get_method().decode("ascii"),
            target=self._url.decode("latin-1"),
            version=version,
            headers=headers,
            keep_alive=parser.should_keep_alive(),
        )
        self._check_framing(request)
        self._events.append(Head(request))

    def _check_framing(self, request: Request) -> None:
        """RFC 9112 §3.2 (Host) and §6 (message body framing)."""
        hosts = 0
        for name, value in request.headers:
            lname = name.lower()
            if lname == "host":
                hosts += 1
            elif lname == "content-length":
                request.content_length = int(value)
            elif lname == "transfer-encoding":
                if self._unknown_coding():
                    raise ProtocolError(501, "Transfer coding not implemented")
                request.chunked = True
            elif lname == "expect":
                if value.strip().lower() != "100-continue":
                    raise ProtocolError(417, "Unsupported expectation")
                request.expect_continue = request.version == "1.1"
        if hosts > 1 or (hosts == 0 and request.version == "1.1"):
            raise ProtocolError(400, "Exactly one Host header is required")
        if request.content_length is not None and request.content_length > self.limits.max_body:
            raise ProtocolError(413, "Request body too large")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body:
            raise ProtocolError(413, "Request body too large")
        self._events.append(Body(body))

    def on_message_complete(self) -> None:
        self._idle = True
        self._prefix = b""
        self._events.append(END)


class _DateCache:
    """IMF-fixdate for the Date header (RFC 9110 §6.6.1), formatted once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


http_date = _DateCache().get


def response_head(status: int, headers: Iterable[tuple[str, str]], *, close: bool = False, version: str = "1.1") -> bytes:
    """Serialize a status line and header block; adds Date, Server and Connection."""
    lines = [f"HTTP/{version} {status} {reason(status)}\r\n".encode("ascii")]
    lines.append(b"Date: " + http_date() + b"\r\nServer: " + SERVER + b"\r\n")
    for name, value in headers:
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    if close:
        lines.append(b"Connection: close\r\n")
    elif version == "1.0":
        lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)
