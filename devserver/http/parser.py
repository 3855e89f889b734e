"""HTTP/1.1 requests: bytes in, request events out; and the bytes of a response head and of a chunk.

No sockets here.  Parsing is done by llhttp through
``httptools``; this module adds what RFC 9112 asks of a server on top of it:
size limits, version checks and transfer-coding checks.  Which framing a
response gets (Content-Length, chunked, close) is decided in
devserver/http/framing.py, which writes its head with :func:`response_head`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httptools

from devserver import __version__
from devserver.http.chunks import ChunkChecker
from devserver.http.dates import imf_fixdate
from devserver.http.errors import ProtocolError
from devserver.http.statuses import reason
from devserver.http.target import check_host, check_method, parse_target, split_path
from devserver.kit.frozen import record
from devserver.kit.memo import MemoTable

SERVER = f"devserver/{__version__}".encode()
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
TCHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)  # not a record: ruff (B008) takes only a frozen dataclass for an immutable default
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
    host: str | None = None  # the Host value the parser checked (an absolute target's authority); None: none
    request_line: str = ""  # a refused request's first line as received (latin-1, up to LINE_KEPT bytes); "" otherwise
    upgrade: str = ""  # the Upgrade field, lower-cased: the protocols the client asks to switch to ("" for none)
    # The target's parts (target.py), given by the parser; split from the target here for a hand-made request.
    path: str = ""
    query: str = ""

    def __post_init__(self) -> None:
        if not self.path:
            self.path, self.query = split_path(self.target)


# Events handed out by RequestParser.feed(), in wire order.  Head is not frozen (never changed once made):
# a frozen __init__ costs twice a plain one, per request.
@dataclass(slots=True)
class Head:
    request: Request


@record
class Body:
    data: bytes


@record
class End:
    pass


@record
class Rejected:
    """The stream broke the protocol here; answer ``error`` and close."""

    error: ProtocolError
    line: bytes = b""  # the refused message's first line as received, as far as it came (RequestParser.request_line)


END = End()
ParserEvent = Head | Body | End | Rejected

VERSION_LINE = re.compile(rb"[!-~]+ [!-~]+ HTTP/([0-9])\.([0-9])")
SEEN_MAX = 128 * 1024  # bytes kept to find where a message began (more than the largest head)
METHOD_MAX = 32  # longest method token waited for before it is refused
LINE_KEPT = 1024  # bytes of a refused request's first line kept to show it (the limit on a line is 8 KiB)
STAND_IN = b"GET"  # what llhttp is fed in place of a method token it does not know


class _Counter:
    """Callbacks of a scratch parser that only counts complete messages."""

    def __init__(self) -> None:
        self.completed = 0

    def on_message_complete(self) -> None:
        self.completed += 1


class RequestParser:
    """Turns a connection's byte stream into Head/Body/End events.

    Feed it whatever arrives, whole or in pieces; the events, and the status
    of a refusal, are the same however the bytes are split.  Pipelined
    requests come out in order.
    """

    __deletable__ = ["_parser"]  # close() lets go of llhttp's parser (a class compiled by mypyc must say so)

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[ParserEvent] = []
        self._reset_head()
        self._idle = True  # between messages
        # What the current llhttp parser was fed since it was last between messages at
        # the start of a feed(), and how many messages it completed since: enough to
        # find the first bytes of the message an error is about, however TCP split it.
        self._seen: list[bytes] = []
        self._seen_size = 0
        self._completed = 0
        self._method: str | None = None  # the real token when llhttp was fed STAND_IN
        self._chunks: ChunkChecker | None = None  # the size lines of the chunked body being received
        self._pending = b""  # a message start whose method token is not complete yet
        self._body_bytes = 0
        self.upgraded = False  # llhttp stops at Upgrade; we then close
        self.rejected = False
        self.done = False  # a message ended the connection (close, HTTP/1.0): nothing after it is read
        self._last = False  # the message being parsed ends the connection (its head's keep_alive, decided once)

    def _reset_head(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0  # the header block's size, counted as fields arrive
        self._head_bytes = 0
        self._in_head = False

    def close(self) -> None:
        """Nothing more will be fed (the connection is gone).

        llhttp's parser holds this object's callbacks, and this object holds
        it: a reference cycle that only the garbage collector would free, one
        per connection.
        """
        self.done = True  # feed() reads nothing from now on, so the parser is never needed again
        if hasattr(self, "_parser"):
            del self._parser

    @property
    def in_head(self) -> bool:
        """True while a request head has begun but is not complete."""
        return self._in_head or bool(self._pending)

    def feed(self, data: bytes) -> list[ParserEvent]:
        """Parse ``data``; return the events it completes.

        A protocol violation ends the list with a Rejected event, after the
        events of the requests that came before it; nothing is parsed after.
        """
        if self.upgraded or self.rejected or self.done:
            return []
        try:
            if self._pending:
                self._pending += data  # kept whole until judged, so a refusal can show it
                self._restart(self._pending)
            else:
                self._feed(data)
        except ProtocolError as exc:
            self.rejected = True
            self._events.append(Rejected(exc, self.request_line()))
        events, self._events = self._events, []
        return events

    def _feed(self, data: bytes) -> None:
        restart = False
        if self._idle:
            self._seen, self._seen_size, self._completed = [], 0, 0
        if self._seen_size < SEEN_MAX:
            self._seen.append(data)
            self._seen_size += len(data)
        if self._chunks is not None:
            self._chunks.feed(data)  # before llhttp, so that a refused body is never dispatched
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
            restart = True
        except httptools.HttpParserError:
            if self.done:
                return  # bytes after a message that closes the connection are never read
            raise self._refusal() from None
        if restart:
            self._restart(self._message_start())
            return
        if self._in_head:
            self._head_bytes += len(data)
            if not self._headers and len(self._url) > self.limits.max_request_line:
                raise ProtocolError(414, "Request line too long")
            if self._head_bytes > self.limits.max_request_line + self.limits.max_header_bytes:
                raise ProtocolError(431, "Request header block too large")

    def request_line(self) -> bytes:
        """The first line of the message being parsed, as received so far (up to LINE_KEPT bytes; b"": unknown).

        Only read when a request is refused or times out: the parser keeps no
        copy of its own on the way of an accepted request.
        """
        message = self._pending or self._message_start()
        line = message[: LINE_KEPT + 2].split(b"\n", 1)[0].removesuffix(b"\r")
        if self._method is not None and line.startswith(STAND_IN + b" "):
            line = self._method.encode("ascii") + line[len(STAND_IN) :]  # llhttp was fed the stand-in
        return line[:LINE_KEPT]

    def _message_start(self) -> bytes:
        """The bytes of the message being parsed, from its first byte (empty if unknown)."""
        if self._seen_size >= SEEN_MAX:
            return b""
        seen = b"".join(self._seen)
        if self._completed:
            # Earlier messages ended inside this data; find where by parsing it again, byte by byte.
            counter = _Counter()
            scratch = httptools.HttpRequestParser(counter)
            for i in range(len(seen)):
                scratch.feed_data(seen[i : i + 1])
                if counter.completed == self._completed:
                    seen = seen[i + 1 :]
                    break
        return seen.lstrip(b"\r\n")

    def _restart(self, message: bytes) -> None:
        """llhttp refused the method token at the start of ``message``: judge the token ourselves.

        A well-formed token that llhttp does not know is parsed with a stand-in
        method, so the rest of the head is checked as for any request (a
        missing Host is still a 400); the head then gets 501.
        """
        token, space, rest = message.partition(b" ")
        if not token or not all(c in TCHARS for c in token) or len(token) > METHOD_MAX:
            raise ProtocolError(400, "Malformed request line")
        if not space:
            self._pending = message  # the token may still be growing
            return
        self._pending = b""
        self._method = token.decode("ascii")
        self._parser = httptools.HttpRequestParser(self)
        self._idle = True
        self._feed(STAND_IN + b" " + rest)

    def _refusal(self) -> ProtocolError:
        """The status for a message llhttp refused, from our own reading of it, not llhttp's wording."""
        message = self._message_start()
        head = message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        # llhttp stops at the field it refuses, before telling us of it: read the fields from the bytes.
        fields = [(name.strip(), value) for name, sep, value in (line.partition(b":") for line in head[1:]) if sep]
        if fields and fields[-1][1].rstrip().endswith(b","):
            # llhttp stopped on a list still being received: another coding follows the last one seen.
            fields[-1] = (fields[-1][0], fields[-1][1] + b" ?")
        coding = self._coding_refusal(fields)
        if coding is not None:
            return coding
        line = head[0]
        match = VERSION_LINE.fullmatch(line)
        if match is not None and match.groups() not in ((b"1", b"0"), (b"1", b"1")):
            return ProtocolError(505, "HTTP version not supported")
        return ProtocolError(400, "Malformed request")

    @staticmethod
    def _coding_refusal(headers: list[tuple[bytes, bytes]]) -> ProtocolError | None:
        """RFC 9112 §6.1 and §6.3 on Transfer-Encoding: smuggling shapes first (400), then unknown codings (501)."""
        codings = [c.strip().lower() for name, value in headers if name.lower() == b"transfer-encoding"
                   for c in value.split(b",") if c.strip()]
        if not codings:
            return None
        if any(name.lower() == b"content-length" for name, _ in headers):
            return ProtocolError(400, "Content-Length with Transfer-Encoding")  # a smuggling vector
        if b"chunked" in codings and (codings[-1] != b"chunked" or codings.count(b"chunked") > 1):
            return ProtocolError(400, "chunked must be the final transfer coding, applied once")
        if any(c != b"chunked" for c in codings):
            return ProtocolError(501, "Transfer coding not implemented")
        return None

    # httptools callbacks -------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset_head()
        self._in_head = True
        self._idle = False
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._url = self._url + url if self._url else url  # most targets come in one piece: no copy
        if len(self._url) > self.limits.max_request_line:
            raise ProtocolError(414, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._header_bytes += len(name) + len(value) + 4
        if len(self._headers) > self.limits.max_header_count:
            raise ProtocolError(431, "Too many header fields")

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        version = _VERSIONS.get(parser.get_http_version())
        if version is None:
            raise ProtocolError(505, f"HTTP version {parser.get_http_version()} not supported")
        if self._header_bytes > self.limits.max_header_bytes:
            raise ProtocolError(431, "Request header block too large")
        method = self._method or _methods[parser.get_method()]
        target, path, query = _targets[self._url]
        keep_alive = parser.should_keep_alive()
        request = Request(method, target, version, [], keep_alive, path=path, query=query)
        self._last = not keep_alive
        hosts = self._take_fields(request)
        request.host = check_host(hosts, version)
        if not path or method == "CONNECT":  # not the origin form: _target split nothing
            self._interpret(request)
        check_method(method)
        self._method = None  # only now: a head refused above still shows its own method (request_line)
        if request.chunked:
            self._start_chunk_check()
        self._events.append(Head(request))

    def _start_chunk_check(self) -> None:
        """Follow this chunked body's size lines from its first byte (chunks.py)."""
        message = self._message_start()
        head_end = message.find(b"\r\n\r\n")
        if head_end < 0:
            return  # the head is beyond what is kept: llhttp alone judges this body
        self._chunks = ChunkChecker()
        self._chunks.feed(message[head_end + 4 :])

    @staticmethod
    def _interpret(request: Request) -> None:
        """A target not in the origin form (target.py): its path and query; an absolute target's authority becomes
        the Host."""
        target = parse_target(request.method, request.target)
        request.path, request.query = target.path, target.query
        if target.authority is not None:
            request.host = target.authority
            request.headers = [(n, target.authority if n.lower() == "host" else v) for n, v in request.headers]
            if not any(n.lower() == "host" for n, _ in request.headers):
                request.headers.append(("Host", target.authority))

    def _take_fields(self, request: Request) -> list[str]:
        """The header fields as text into ``request``, checked for framing (RFC 9112 §6) in the same pass;
        the Host values, for check_host."""
        headers = request.headers
        hosts = []
        content_types = 0
        for raw_name, raw_value in self._headers:
            name, lname = _field_names[raw_name]
            value = raw_value.strip(b" \t").decode("latin-1")  # the whitespace around a value is not part of it (RFC 9110 §5.5)
            headers.append((name, value))
            if lname not in _FRAMING_FIELDS:
                continue
            if lname == "host":
                hosts.append(value)
            elif lname == "content-type":
                content_types += 1
            elif lname == "content-length":
                request.content_length = int(value)
            elif lname == "upgrade":
                request.upgrade = value.lower()
            elif lname == "transfer-encoding":
                coding = self._coding_refusal(self._headers)
                if coding is not None:
                    raise coding
                request.chunked = True
            elif value.strip().lower() != "100-continue":  # expect
                raise ProtocolError(417, "Unsupported expectation")
            else:
                request.expect_continue = request.version == "1.1"
        if content_types > 1:
            raise ProtocolError(400, "More than one Content-Type")  # which one the app reads is a guess
        if request.content_length is not None and request.content_length > self.limits.max_body:
            raise ProtocolError(413, "Request body too large")
        return hosts

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body:
            raise ProtocolError(413, "Request body too large")
        self._events.append(Body(body))

    def on_message_complete(self) -> None:
        self._chunks = None
        self._idle = True
        self._completed += 1
        self._events.append(END)
        if self._last:
            self.done = True


_FRAMING_FIELDS = frozenset({"host", "content-type", "content-length", "transfer-encoding", "expect", "upgrade"})


def _field_name(raw: bytes) -> tuple[str, str]:
    name = raw.decode("latin-1")
    return name, name.lower()


_field_names = MemoTable(_field_name, 1024)  # a field name's bytes → (its text, lower-case)
# The versions served, as one string each: llhttp makes a new "1.1" per request, which pickle would send
# (and the supervisor rebuild) once per event rather than once per batch.
_VERSIONS = {"1.1": "1.1", "1.0": "1.0"}
_methods: MemoTable[bytes, str] = MemoTable(lambda raw: raw.decode("ascii"), 64)  # a method token from llhttp → its text


def _target(raw: bytes) -> tuple[str, str, str]:
    """The target as text, and its path and query when it is in the origin form ("" otherwise: _interpret's)."""
    target = raw.decode("latin-1")
    if not target.startswith("/"):
        return target, "", ""
    return (target, *split_path(target))


_targets = MemoTable(_target, 512)  # a request target's bytes → (target, path, query): pages ask for the same ones


class _DateCache:
    """The Date (RFC 9110 §6.6.1, IMF-fixdate) and Server fields every response starts with, formatted once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._fields = b""

    def fields(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._fields = b"Date: " + imf_fixdate(now).encode("ascii") + b"\r\nServer: " + SERVER + b"\r\n"
            self._second = now  # last: a reader that sees the new second sees its text
        return self._fields


_dates = _DateCache()
date_fields = _dates.fields  # the same bytes object all through a second: a head made in it may be kept as long


def _status_line(key: tuple[str, int]) -> bytes:
    version, status = key
    return f"HTTP/{version} {status} {reason(status)}\r\n".encode("ascii")


_STATUS_LINES = MemoTable(_status_line, 1024)  # (version, status) → the status line
_KEEP_ALIVE_ENDS = {"1.0": b"Connection: keep-alive\r\n\r\n"}  # HTTP/1.1 keeps alive unless told otherwise


def response_head(status: int, headers: Iterable[tuple[str, str]], *, close: bool = False, version: str = "1.1") -> bytes:
    """Serialize a status line and header block; adds Date, Server and Connection."""
    return head_of_fields(status, header_fields(headers), close=close, version=version)


def header_fields(headers: Iterable[tuple[str, str]]) -> bytes:
    """Header fields as they go on the wire, each ``name: value\\r\\n``."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")


def head_of_fields(status: int, fields: bytes, *, close: bool = False, version: str = "1.1") -> bytes:
    """A status line and ``fields`` (from header_fields) with Date, Server and Connection: a response's head."""
    end = b"Connection: close\r\n\r\n" if close else _KEEP_ALIVE_ENDS.get(version, b"\r\n")
    return b"".join((_STATUS_LINES[version, status], _dates.fields(), fields, end))


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)
