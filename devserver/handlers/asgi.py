"""The server side of ASGI 3.0 for HTTP: the scope, ``receive`` and ``send`` of one request.

An ASGI app runs as a task on the worker's loop, not in the thread pool.
An app loaded and fresh is called at the request's head and reads the body
as it arrives: each ``receive`` gives what came off the socket since the
last (``more_body`` until the end; the connection stops reading while
:data:`~devserver.handlers.exchange.STREAM_BOUND` bytes wait for the app).
A body that breaks off (over the limit, malformed) is answered by the
server if the app has not started its response, else the connection is
closed; the app hears ``http.disconnect``.  An app called once the body
was in (one imported at this request, or a request pipelined behind
another) reads the spool in ``http.request`` events of at most
:data:`CHUNK` bytes.  Then ``receive`` waits for the client to leave
(``http.disconnect``) or for the response to be complete.  ``send`` maps ``http.response.start`` and
``http.response.body`` onto the :class:`~devserver.handlers.exchange.Responder`:
a body sent whole in one event goes out in one write with its length, one
sent with ``more_body`` is streamed.

The parts shared by every scope type (the app's call, its failure report,
the request log's context) are :class:`ASGICall`'s; :class:`HTTPCall` adds
what is HTTP's.  A WebSocket scope is another subclass with its own
``receive`` and ``send``.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import unquote

from devserver.debug import failures, requestlogs, tracebacks
from devserver.handlers.exchange import BodyStream, ClientGone, Exchange, Responder
from devserver.handlers.wsgi import CAUGHT, HOP_BY_HOP
from devserver.http.framing import HeaderBlock, header_block
from devserver.kit.memo import MemoTable

# The ASGI spec's dicts: values of many types, each read with a check (isinstance) where the server relies on it.
Scope = MutableMapping[str, object]
Message = MutableMapping[str, object]
State = dict[str, object]  # the lifespan's scope["state"]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}  # 2.4: send raises OSError once the client is gone
CHUNK = 64 * 1024  # bytes of request body per http.request event
DISCONNECT_CHECK = 0.05  # seconds between looks at the connection while receive() waits for the client to leave
DRAIN_CHECK = 0.005  # seconds between looks at a paused transport while a streaming app waits in send()
FAILED_STATUS = 500  # a whole response with this status or above waits for the app to return (see HTTPCall)


class AppError(Exception):
    """The application broke the ASGI contract (a message out of order, a bad status or header)."""


@dataclass(frozen=True, slots=True, eq=False)
class ASGIServer:
    """What the server side of ASGI needs from the worker, handed in once."""

    address: tuple[str, int]  # scope["server"]
    log_line: Callable[[str], None]  # a line for the server log (an app's failure after its response)
    request_detail: bool = True  # collect the lines the app writes per request (Config.request_detail)
    scheme: str = "http"  # scope["scheme"]: "https" over TLS (Config.secure)
    # The responses being streamed now, and the app each came from: a reload ends the old app's (end_streams).
    streams: dict[HTTPCall, ASGIApplication] = field(default_factory=dict)

    def end_streams(self, current: object = None) -> None:
        """End every streamed response whose app is not ``current`` (an SSE stream never ends by itself).

        The response gets its end (the chunked terminator, or the close of a
        length-less one) and the connection is closed: the app's next ``send``
        raises, its ``receive`` answers ``http.disconnect``, and the client
        (an EventSource) reconnects to the new code.  A reload never waits on it.
        """
        for call, app in list(self.streams.items()):
            if app is not current:
                call.end_stream()


def _nothing() -> None:
    """An app's ``after`` when it has none: the call skips it."""


@dataclass(frozen=True, slots=True, eq=False)
class ASGIApplication:
    """A loaded ASGI app as a worker serves it: what the loader built, and its lifespan's state.

    ``state`` is the dict the lifespan startup filled (copied into each
    request's ``scope["state"]``); ``after`` runs after each call (the
    project loader's scan for modules the app imported lazily).
    """

    app: ASGIApp
    name: str  # the APP as the user named it, for messages
    state: State = field(default_factory=dict)
    after: Callable[[], None] = _nothing


# Reading what an app sent: each field's type checked once here, an AppError saying what is wrong otherwise.
def header_pairs(message: Message) -> list[tuple[bytes, bytes]]:
    """``message["headers"]`` as pairs of bytes."""
    raw = message.get("headers") or ()
    if not isinstance(raw, Iterable):
        raise AppError(f"the headers must be a list of pairs, not {raw!r}")
    return [_pair(pair) for pair in raw]


def _pair(pair: Any) -> tuple[bytes, bytes]:  # Any: whatever the app put in its list, checked here
    try:
        name, value = pair
        return bytes(name), bytes(value)
    except (TypeError, ValueError):
        raise AppError(f"a header must be a pair of bytes, not {pair!r}") from None


def bytes_field(message: Message, key: str = "body") -> bytes:
    """``message[key]`` as bytes (b"" when absent)."""
    value = message.get(key, b"")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise AppError(f"{key!r} must be bytes, not {type(value).__name__}")
    return bytes(value)


def int_field(message: Message, key: str, default: int | None = None) -> int:
    """``message[key]`` as an int (``default`` when absent or None; required without one)."""
    value = message.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, int):
        raise AppError(f"{key!r} must be an int, not {value!r}")
    return value


def str_field(message: Message, key: str) -> str | None:
    """``message[key]`` as a str, or None when absent."""
    value = message.get(key)
    if value is not None and not isinstance(value, str):
        raise AppError(f"{key!r} must be a str, not {value!r}")
    return value


def _scope_header(field: tuple[str, str]) -> tuple[bytes, bytes]:
    name, value = field
    return name.lower().encode("latin-1"), value.encode("latin-1")


# A request's header field → the scope's pair (lower-case name, bytes): a client sends the same fields on every request.
_scope_headers = MemoTable(_scope_header, 4096)


def _client(peer: str) -> tuple[str, int] | None:
    host, _, port = peer.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


_clients = MemoTable(_client, 1024)  # "host:port" → scope["client"]: asked on every request of a connection


def http_scope(conn: Responder, exchange: Exchange, root_path: str, server: ASGIServer,
               state: State) -> Scope:
    """The ``http`` scope of one request (ASGI HTTP spec, "HTTP Connection Scope")."""
    request = exchange.request
    path = request.path
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": request.version,
        "method": request.method,
        "scheme": server.scheme,
        "path": unquote(path) if "%" in path else path,
        "raw_path": path.encode("latin-1"),
        "query_string": request.query.encode("latin-1"),
        "root_path": root_path,
        "headers": list(map(_scope_headers.__getitem__, request.headers)),
        "client": _clients[conn.client],
        "server": server.address,
        "state": dict(state),  # shallow, as uvicorn does: a request's additions never reach the next one
    }


def report_environ(exchange: Exchange) -> dict[str, object]:
    """The request as the error report reads it (the WSGI environ's keys: tracebacks._request)."""
    request = exchange.request
    environ: dict[str, object] = {"REQUEST_METHOD": request.method, "RAW_URI": request.target,
                               "QUERY_STRING": request.query, "wsgi.input": exchange.input()}
    for name, value in request.headers:
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    return environ


class ASGICall:
    """One call of an ASGI app for one connection's scope; subclasses give ``receive``, ``send`` and the outcome."""

    def __init__(self, conn: Responder, exchange: Exchange, finished: Callable[[], None]) -> None:
        self.conn = conn
        self.exchange = exchange
        self._finished: Callable[[], None] | None = finished

    def finished(self) -> None:
        """The connection may go on (the response is complete, or the call is over): once."""
        done, self._finished = self._finished, None
        if done is not None:
            done()

    async def receive(self) -> Message:
        raise NotImplementedError

    async def send(self, message: Message) -> None:
        raise NotImplementedError

    def returned(self) -> None:
        """The app returned."""

    def failed(self, text: str, exc: BaseException) -> None:
        """The app raised ``exc`` (``text``: its traceback)."""

    def aborted(self) -> None:
        """The client left, or the worker stopped, while the app ran."""

    async def run(self, entry: ASGIApplication, scope: Scope) -> None:
        """Call the app and settle the outcome; never raises."""
        try:
            await entry.app(scope, self.receive, self.send)
        except (ClientGone, asyncio.CancelledError):
            self.aborted()
        except BaseException as exc:  # noqa: BLE001 - any app failure becomes a 500 page or a closed connection
            self.failed(traceback.format_exc(), exc)
        else:
            self.returned()
        finally:
            if entry.after is not _nothing:
                entry.after()
            self.finished()


def start_call(call: ASGICall, entry: ASGIApplication, scope: Scope,
               logs: requestlogs.LineCollector | None) -> asyncio.Task[None]:
    """Run ``call`` in a task of its own, with ``logs`` as the request's (what the app prints is its request's)."""
    loop = call.conn.loop
    token = requestlogs.current.set(logs)  # the task copies the context it is made in, with this value
    try:
        if loop.get_task_factory() is None:  # as loop.create_task does, less its layer of Python: once per request
            return asyncio.Task(call.run(entry, scope), loop=loop)
        return loop.create_task(call.run(entry, scope))
    finally:
        requestlogs.current.reset(token)


class HTTPCall(ASGICall):
    """``receive`` and ``send`` of one HTTP request.

    A whole response (one body event) with a status of :data:`FAILED_STATUS`
    or above is held until the app returns: a framework that answers its own
    bare 500 and then raises (Starlette's ``ServerErrorMiddleware``) gets
    devserver's 500 page with the traceback instead, as a WSGI app does.
    Other whole responses go out at once, so a background task run after the
    response never delays it.
    """

    # What a call starts with, as class attributes: a call sets only those that change (most stay as they are).
    body: BinaryIO | None = None  # the request body, rewound when first read
    stream: BodyStream | None = None  # the body arrives while the app runs
    request_done = False  # the last http.request event was given
    status = 0
    headers: HeaderBlock | None = None  # the app's, checked (response_block)
    streaming = False  # the head went out with start(): write()/finish() follow
    complete = False  # the whole response went out (or the connection was given up)
    held: bytes | None = None  # a whole failure response, waiting for the app to return
    done: asyncio.Event | None = None  # made when receive() first waits for the end: most apps never do
    scope: Scope | None = None  # where a framework leaves the exception it answered a 500 for (CAUGHT)

    def __init__(self, conn: Responder, exchange: Exchange, finished: Callable[[], None],
                 server: ASGIServer | None = None, entry: ASGIApplication | None = None) -> None:
        # ASGICall's three, set here rather than through super().__init__: one call fewer, per request.
        self.conn = conn
        self.exchange = exchange
        self._finished = finished
        # Where a failure after the response is logged (it has no row to go to) and where a streamed
        # response is listed while it lasts, with its app (ASGIServer.streams); None in tests.
        self.server, self.entry = server, entry
        self.body_left = exchange.body_size
        body = exchange.body
        if isinstance(body, BodyStream):
            self.stream = body
            body.broken = self._body_failed

    # receive ---------------------------------------------------------------
    async def receive(self) -> Message:
        if not self.request_done and self.stream is not None:
            return await self._arrived(self.stream)
        if not self.request_done:
            chunk = self._read() if self.body_left > 0 else b""
            self.body_left -= len(chunk)
            more = self.body_left > 0 and bool(chunk)
            self.request_done = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        conn = self.conn
        done = self.done = self.done or asyncio.Event()
        # A held failure response is not out yet: a framework that listens for the disconnect meanwhile
        # (Django's ASGIHandler) would take one for the client's going and raise RequestAborted.
        while not conn.closing and not conn.eof and (not self.complete or self.held is not None):
            try:
                await asyncio.wait_for(done.wait(), DISCONNECT_CHECK)
            except TimeoutError:
                pass
        return {"type": "http.disconnect"}

    async def _arrived(self, stream: BodyStream) -> Message:
        """The body's bytes that came since the last call, once some have (or its end, or the client's going)."""
        conn = self.conn
        while not (stream.parts or stream.ended or stream.failure or stream.closed or conn.closing or conn.eof):
            try:
                await asyncio.wait_for(stream.arrived.wait(), DISCONNECT_CHECK)
            except TimeoutError:
                pass
        if stream.parts or stream.ended:
            data = stream.take()
            self.request_done = stream.ended and not stream.parts
            return {"type": "http.request", "body": data, "more_body": not self.request_done}
        self.request_done = True  # the body broke off (answered by _body_failed), or the client went
        return {"type": "http.disconnect"}

    def _body_failed(self, status: int, message: str) -> None:
        """The body broke off (over the limit, malformed): the server's error if the response has not begun."""
        if self.complete:
            return
        if self.streaming:
            self.aborted()
        else:
            self._complete()
            self.conn.send_error(status, message, close=True)
            self.conn.end()
        self.finished()

    def _read(self) -> bytes:
        try:
            if self.body is None:
                self.body = self.exchange.input()
            return self.body.read(CHUNK)
        except ValueError:  # closed: the response was complete and the connection went on
            return b""

    # send --------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if self.complete:
            if self.conn.closing and not self.held:
                raise ClientGone("client disconnected")
            raise AppError(f"{kind!r} sent after the response was complete")
        if self.conn.closing:
            raise ClientGone("client disconnected")
        if kind == "http.response.start":
            self._start(message)
        elif kind == "http.response.body":
            self._body(message)
            if self.streaming and not self.complete:
                await self._drained()
        else:
            raise AppError(f"unexpected ASGI message {kind!r} for an http scope")

    async def _drained(self) -> None:
        """Wait while the client reads slower than the app streams (the transport paused its writes)."""
        conn = self.conn
        gate = conn.write_gate
        while gate is not None and not gate.is_set() and not conn.closing:
            await asyncio.sleep(DRAIN_CHECK)

    def _start(self, message: Message) -> None:
        if self.headers is not None:
            raise AppError("http.response.start sent twice")
        status = message.get("status")
        if not isinstance(status, int) or not 100 <= status <= 999:
            raise AppError(f"invalid status {status!r}")
        self.status, self.headers = status, response_block(message)

    def _body(self, message: Message) -> None:
        headers = self.headers
        if headers is None:
            raise AppError("http.response.body sent before http.response.start")
        body = message.get("body", b"")
        if type(body) is not bytes:
            body = bytes_field(message)
        more = message.get("more_body", False)
        if self.streaming:
            self.conn.write(body)
            if not more:
                self._complete()
                self.conn.finish()
                self.finished()
            return
        if more:
            self.streaming = True
            self.conn.start(self.status, headers, body)
            if self.server is not None and self.entry is not None:
                self.server.streams[self] = self.entry
            return
        if self.status >= FAILED_STATUS:
            self.held = body
            self.complete = True  # for the app's send(); the bytes go out when it returns
            return
        self._complete()
        self.conn.send(self.status, headers, body)
        self.conn.end()
        self.finished()

    def _complete(self) -> None:
        self.complete = True
        if self.stream is not None and not self.stream.ended:
            self.exchange.close = True  # answered before its body was in: the rest cannot be told from a request
        if self.done is not None:
            self.done.set()
        if self.streaming and self.server is not None:
            self.server.streams.pop(self, None)

    def end_stream(self) -> None:
        """End a streamed response now, whatever the app sends next (a reload: ASGIServer.end_streams)."""
        if not self.streaming or self.complete:
            return
        self.exchange.close = True  # the connection closes after the end: the app learns the client went
        self._complete()
        self.conn.finish()
        self.finished()

    # outcome ---------------------------------------------------------------
    def returned(self) -> None:
        if self.held is not None:
            self._caught()
            self._send_held()
        elif self.headers is None and not self.complete:  # complete: the server answered a broken body
            self._error_page("The application returned without starting a response.", None)
        elif not self.complete:
            self.aborted()  # a streamed body cut short: only closing the connection can tell the client

    def _caught(self) -> None:
        """The exception a framework caught and answered its own 500 for (Django: apps/devmode.py), as WSGI's."""
        exc = self.scope.get(CAUGHT) if self.scope is not None else None
        if isinstance(exc, BaseException):
            exchange = self.exchange
            exchange.traceback = "".join(traceback.format_exception(exc))
            exchange.report = tracebacks.report(exc, report_environ(exchange))
            failures.keep(requestlogs.current_id(), exc)

    def _send_held(self) -> None:
        if self.conn.closing:
            self._end_gone()
            return
        self.conn.send(self.status, self.headers or [], self.held or b"")
        self.held = None
        self._complete()  # now for the client too: a receive() waiting for the end returns
        self.conn.end()

    def failed(self, text: str, exc: BaseException) -> None:
        exchange = self.exchange
        failures.keep(requestlogs.current_id(), exc)  # for the dashboard's console, under the dashboard only
        if self.streaming or (self.complete and self.held is None):
            if self.complete:  # after the response (a background task): the row is written, the log has it
                if self.server is not None:
                    for line in text.rstrip("\n").split("\n"):
                        self.server.log_line(line)
                return
            exchange.traceback = text
            exchange.report = tracebacks.report(exc, report_environ(exchange))
            self.aborted()
            return
        self._error_page("The application raised an exception.", text, exc)

    def _error_page(self, message: str, text: str | None, exc: BaseException | None = None) -> None:
        exchange = self.exchange
        report = tracebacks.report(exc, report_environ(exchange)) if exc is not None else None
        exchange.traceback, exchange.report = text, report
        self._complete()
        if self.conn.closing:
            self._end_gone()
            return
        self.conn.send_error(500, message, text, report=report)
        self.conn.end()

    def aborted(self) -> None:
        if self.complete and self.held is None:
            return
        self._complete()
        self._end_gone()

    def _end_gone(self) -> None:
        exchange = self.exchange
        exchange.close = True
        if exchange.status == 0:
            exchange.status = 500
        if self.conn.current is exchange:
            self.conn.abort()
            self.conn.end()


def _response_name(raw: bytes) -> str:
    name = raw.decode("latin-1")
    if not name or any(c in name for c in " \t\r\n:"):
        raise AppError(f"invalid header {name!r}")
    return name


# A response header's name as bytes → as str, checked: an app sends the same few names on every response.
_response_names = MemoTable(_response_name, 4096)


def _header(pair: tuple[bytes, bytes]) -> tuple[str, str]:
    name, value = _response_names[pair[0]], pair[1].decode("latin-1")
    if "\r" in value or "\n" in value:
        raise AppError(f"invalid header {name!r}: {value!r}")
    return name, value


def _checked_block(raw: Iterable[object]) -> HeaderBlock:
    """An app's response headers checked (AppError if one is bad), less those the server owns, read for framing."""
    headers = []
    for pair in raw:
        name, value = _header(_pair(pair))
        if name.lower() not in HOP_BY_HOP:  # the server owns these, as for WSGI; Connection: close is framing's
            headers.append((name, value))
    return header_block(headers)


# An app's response headers (a tuple of pairs) → their block: most apps send the same few lists again and again.
_response_blocks = MemoTable(_checked_block, 256)


def response_block(message: Message) -> HeaderBlock:
    """``message["headers"]`` checked and read for framing, once per distinct list."""
    raw = message.get("headers") or ()
    if type(raw) is list:  # what apps send; isinstance(raw, Iterable) goes through the ABC machinery
        pairs = tuple(raw)
    elif isinstance(raw, Iterable):
        pairs = raw if isinstance(raw, tuple) else tuple(raw)
    else:
        raise AppError(f"the headers must be a list of pairs, not {raw!r}")
    try:
        return _response_blocks[pairs]
    except TypeError:  # unhashable (pairs as lists, values as bytearrays): checked each time
        return _checked_block(pairs)


def start_asgi(conn: Responder, exchange: Exchange, entry: ASGIApplication, root_path: str, server: ASGIServer,
               finished: Callable[[], None]) -> asyncio.Task[None]:
    """Run ``entry``'s app for the current request in a task; ``finished()`` once the response is complete."""
    exchange.logs = requestlogs.LineCollector() if server.request_detail else None
    call = HTTPCall(conn, exchange, finished, server, entry)
    scope = http_scope(conn, exchange, root_path, server, entry.state)
    call.scope = scope
    return start_call(call, entry, scope, exchange.logs)


__all__ = ["ASGIApp", "ASGIApplication", "ASGIServer", "AppError", "HTTPCall", "bytes_field", "header_pairs", "http_scope",
           "int_field", "start_asgi", "str_field"]
