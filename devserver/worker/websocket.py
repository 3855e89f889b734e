"""One WebSocket connection in a worker (RFC 6455): websockets' sans-IO protocol on an asyncio transport.

The HTTP connection answers the upgrade request; when the app accepts, it
hands its transport over (``Connection.switch_protocol``) and this protocol owns it
from then on.  Framing, masking, UTF-8 checks, pongs to pings, the closing
handshake and the message size limit are ``websockets.server.ServerProtocol``'s
(chosen over wsproto by bench/ws_sansio.py); this module only moves bytes
and reassembles fragmented messages for the app.

A close the server starts (a reload: 1012, a stop: 1001) waits at most
:data:`CLOSE_WAIT` for the client's answer, then drops the TCP connection:
nothing the client does or fails to do can hold up a reload.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from websockets.datastructures import Headers
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from devserver.handlers.asgi import ASGIApplication
from devserver.handlers.asgi_websocket import Closed, Incoming, serve, websocket_scope
from devserver.handlers.exchange import ClientGone, Exchange
from devserver.ipc.events import WebSocketMessage, WebSocketSummary

MAX_MESSAGE = 16 * 1024 * 1024  # bytes: uvicorn's default --ws-max-size; a longer message closes with 1009
CLOSE_WAIT = 1.0  # seconds the client has to answer a close before its TCP connection is dropped
LOGGED_MESSAGES = 100  # messages kept per connection for the dashboard (the first ones; the counts go on)
LOGGED_PREVIEW = 256  # bytes of each kept message
GONE = 1006  # RFC 6455 §7.1.5: closed without a close frame (never sent on the wire)
_DATA = {Opcode.TEXT: True, Opcode.BINARY: False}  # the opcodes that begin a message: True for text


def handshake(target: str, headers: list[tuple[str, str]]) -> tuple[ServerProtocol, Response]:
    """The protocol for an upgrade request and its answer: 101 when the request is a valid handshake,
    else the 4xx (400, 426) to send instead, before any app is called."""
    protocol = ServerProtocol(max_size=MAX_MESSAGE)
    # The head was parsed already (httptools); the protocol's parser reads it again, or it would take
    # the first frames for a request head.  A head in the protocol's own form costs a microsecond.
    protocol.receive_data(Request(target, Headers(headers)).serialize())
    request = protocol.events_received()[0]
    assert isinstance(request, Request)
    return protocol, protocol.accept(request)


class WebSocket(asyncio.Protocol):
    """The open WebSocket: messages in for the app's ``receive``, frames out for its ``send``."""

    def __init__(self, protocol: ServerProtocol, on_closed: Callable[[WebSocket], object]) -> None:
        self.protocol = protocol
        self.on_closed = on_closed
        self.transport: asyncio.Transport | None = None
        self.incoming: deque[str | bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None  # the app's receive, waiting for a message
        self.writable: asyncio.Future[None] | None = None  # set while the transport pushes back
        self.fragments: list[bytes] = []
        self.text = False  # the message being reassembled is text
        self.gone = False  # the TCP connection is closed
        self.close_timer: asyncio.TimerHandle | None = None
        self.received = 0
        self.sent = 0
        self.log: list[WebSocketMessage] = []
        self.started = time.time()

    # asyncio callbacks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for frame in self.protocol.events_received():
            if isinstance(frame, Frame):  # after the handshake, the protocol gives nothing else
                self._on_frame(frame)
        self._flush()

    def eof_received(self) -> bool:
        self.protocol.receive_eof()
        self._flush()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if self.close_timer is not None:
            self.close_timer.cancel()
        self._wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.on_closed(self)

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    # the app's side -------------------------------------------------------------
    async def receive(self) -> Incoming:
        """The next whole message, or Closed once the connection is closing or gone."""
        while not self.incoming:
            if self.closed is not None:
                return self.closed
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        message = self.incoming.popleft()
        if not self.incoming and self.transport is not None and not self.gone:
            self.transport.resume_reading()
        return message

    async def send(self, message: str | bytes) -> None:
        """Send one message; raises ClientGone once the connection is closing (ASGI: OSError)."""
        if self.closed is not None:
            raise ClientGone(f"WebSocket closed ({self.closed.code})")
        if isinstance(message, str):
            data = message.encode()
            self.protocol.send_text(data)
        else:
            data = message
            self.protocol.send_binary(data)
        self.sent += 1
        self._note("out", data, isinstance(message, str))
        self._flush()
        if self.writable is not None:
            await self.writable

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection is dropped if the client has not answered in CLOSE_WAIT."""
        if self.gone or self.protocol.close_sent is not None:
            return
        self.protocol.send_close(code, reason)
        self._flush()
        self._wake()
        if not self.gone and self.close_timer is None:
            self.close_timer = asyncio.get_running_loop().call_later(CLOSE_WAIT, self._drop)

    @property
    def closed(self) -> Closed | None:
        """How the connection ended (or is ending), once it is: the close code the app is told."""
        if not self.gone and self.protocol.close_rcvd is None and self.protocol.close_sent is None:
            return None
        frame = self.protocol.close_rcvd or self.protocol.close_sent
        return Closed(frame.code, frame.reason) if frame is not None else Closed(GONE, "")

    # helpers -----------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:
        text = _DATA.get(frame.opcode)
        if text is not None:
            self.text, self.fragments = text, [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            self.fragments.append(bytes(frame.data))
        else:
            if frame.opcode is Opcode.CLOSE:
                self._wake()
            return  # pings are answered by the protocol itself
        if not frame.fin:
            return
        data, self.fragments = b"".join(self.fragments), []
        message: str | bytes = data
        if self.text:
            try:
                message = data.decode()
            except UnicodeDecodeError:  # the sans-IO protocol leaves text to its reader (RFC 6455 §8.1)
                self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
                return
        self.received += 1
        self._note("in", data, self.text)
        self.incoming.append(message)
        if self.transport is not None and len(self.incoming) > 1:
            self.transport.pause_reading()  # the app has not read the last one: wait for it
        self._wake()

    def _note(self, direction: str, data: bytes, text: bool) -> None:
        if len(self.log) < LOGGED_MESSAGES:
            preview = data[:LOGGED_PREVIEW]
            shown = preview.decode("utf-8", "replace") if text else preview.hex(" ")
            self.log.append(WebSocketMessage(time.time() - self.started, direction, len(data), text, shown))

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or self.gone:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            else:
                # The protocol's end of stream: the server ends TCP first (RFC 6455 §7.1.1), by a FIN after its
                # close frame, reading on until the client's own.  Closing outright would reset a client still
                # sending (a message over the limit, say), and a reset loses the close frame it had not read.
                transport.write_eof()
        if self.protocol.close_expected() and self.close_timer is None:
            self.close_timer = asyncio.get_running_loop().call_later(CLOSE_WAIT, self._drop)

    def _drop(self) -> None:
        if self.transport is not None and not self.gone:
            self.transport.abort()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Upgradable(Protocol):
    """The HTTP connection of an upgrade request (devserver.worker.connection.Connection)."""

    client: str

    def send(self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, close: bool = False) -> None: ...
    def switch_protocol(self, protocol: asyncio.Protocol) -> None: ...
    def send_error(self, status: int, message: str, detail: str | None = None, *, close: bool = False) -> None: ...
    def start(self, status: int, headers: list[tuple[str, str]], data: bytes = b"") -> None: ...
    def write(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def end(self) -> None: ...


class Upgrade:
    """The app's answer to a handshake (asgi_websocket.Handshake), over the request's HTTP connection."""

    def __init__(self, conn: Upgradable, exchange: Exchange, protocol: ServerProtocol, response: Response,
                 on_open: Callable[[WebSocket], object], on_closed: Callable[[WebSocket], object]) -> None:
        self.conn = conn
        self.exchange = exchange
        self.protocol = protocol
        self.response = response
        self.on_open = on_open
        self.on_closed = on_closed
        self.socket: WebSocket | None = None

    def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> WebSocket:
        response = self.response
        if subprotocol:
            response.headers["Sec-WebSocket-Protocol"] = subprotocol
        for name, value in headers:
            response.headers[name.decode("latin-1")] = value.decode("latin-1")
        self.protocol.send_response(response)
        socket = self.socket = WebSocket(self.protocol, self.on_closed)
        self.exchange.status = 101
        self.conn.switch_protocol(socket)
        if socket.transport is None or socket.transport.is_closing():  # the client left during the handshake: its connection_lost came and went
            socket.connection_lost(None)
        socket._flush()  # the 101 response
        self.on_open(socket)
        self.exchange.sent = len(response.serialize())
        return socket

    def refuse(self, status: int, message: str, detail: str | None = None) -> None:
        self.exchange.traceback = detail
        self.exchange.error = message
        self.conn.send_error(status, message, detail, close=True)
        self.conn.end()

    def respond(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.conn.start(status, [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers])

    def respond_body(self, body: bytes, more: bool) -> None:
        self.conn.write(body)
        if not more:
            self.conn.finish()


async def serve_upgrade(conn: Upgradable, exchange: Exchange, entry: ASGIApplication, server: tuple[str, int], timeout: float,
                        on_open: Callable[[WebSocket], object],
                        on_closed: Callable[[WebSocket], object], *, secure: bool = False) -> WebSocketSummary | None:
    """Answer an upgrade request with ``entry``'s app: the handshake, then the connection until it is closed.

    Returns what the connection's event carries, or None when it was answered over HTTP (a bad
    handshake, the app's refusal or denial, its failure before accepting): that answer was recorded
    as it ended.
    """
    request = exchange.request
    exchange.close = True  # whatever the app answers, HTTP ends here
    protocol, response = handshake(request.target, request.headers)
    if response.status_code != 101:  # not a valid handshake: the app never sees it
        conn.send(response.status_code, list(response.headers.raw_items()), bytes(response.body), close=True)
        conn.end()
        return None
    upgrade = Upgrade(conn, exchange, protocol, response, on_open, on_closed)
    outcome = await serve(entry.app, websocket_scope(request, conn.client, server, state=entry.state, secure=secure), upgrade, timeout)
    socket = upgrade.socket
    if socket is None:
        return None
    closed = socket.closed or Closed(GONE, "")
    exchange.traceback = outcome.traceback
    exchange.capture = None  # nothing of HTTP was exchanged after the head: no bodies
    return WebSocketSummary(socket.received, socket.sent, closed.code, closed.reason, tuple(socket.log))
