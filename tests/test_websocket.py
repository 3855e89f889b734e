"""WebSockets in memory: the worker's protocol class on a fake transport, driven by wsproto's client side
(an independent implementation), and the ASGI side's handshake states on a fake Handshake."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.events import Request as ClientRequest

from devserver.handlers import asgi_websocket
from devserver.handlers.asgi_websocket import Closed, serve, wants_websocket, websocket_scope
from devserver.handlers.exchange import Exchange
from devserver.http.parser import Head, Request, RequestParser
from devserver.worker import websocket
from devserver.worker.websocket import Upgrade, WebSocket, handshake


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a loop of its own (pytest's fixtures still reach it by name)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.eof = False
        self.aborted = asyncio.Event()
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.out += data

    def take(self) -> bytes:
        data, self.out = bytes(self.out), bytearray()
        return data

    def close(self) -> None:
        self.closed = True

    def write_eof(self) -> None:
        self.eof = True

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True
        self.aborted.set()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def client_request() -> tuple[WSConnection, list[tuple[str, str]]]:
    client = WSConnection(ConnectionType.CLIENT)
    head = client.send(ClientRequest(host="127.0.0.1", target="/ws", subprotocols=["chat"]))
    lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    return client, [(name, value) for name, value in (line.split(": ", 1) for line in lines)]


def opened() -> tuple[WSConnection, WebSocket, FakeTransport, list[WebSocket]]:
    """A client and the server's WebSocket after a 101, as Upgrade.accept leaves them."""
    client, headers = client_request()
    protocol, response = handshake("/ws", headers)
    assert response.status_code == 101
    protocol.send_response(response)
    ended: list[WebSocket] = []
    socket = WebSocket(protocol, ended.append)
    transport = FakeTransport()
    socket.connection_made(transport)  # type: ignore[arg-type]
    socket._flush()
    client.receive_data(transport.take())
    assert isinstance(next(client.events()), AcceptConnection)
    return client, socket, transport, ended


def client_events(client: WSConnection, transport: FakeTransport) -> list[Any]:
    client.receive_data(transport.take())
    return list(client.events())


@in_loop
async def test_text_and_binary_messages_reach_the_app_and_go_back() -> None:
    client, socket, transport, _ = opened()
    socket.data_received(client.send(TextMessage("héllo")) + client.send(BytesMessage(b"\x00\xff")))
    assert await socket.receive() == "héllo"
    assert await socket.receive() == b"\x00\xff"
    await socket.send("back")
    await socket.send(b"\x01\x02")
    events = client_events(client, transport)
    assert [(type(e), e.data) for e in events] == [(TextMessage, "back"), (BytesMessage, b"\x01\x02")]
    assert (socket.received, socket.sent) == (2, 2)
    assert [(m.direction, m.size, m.text, m.shown) for m in socket.log] == [
        ("in", 6, True, "héllo"), ("in", 2, False, "00 ff"), ("out", 4, True, "back"), ("out", 2, False, "01 02")]


@in_loop
async def test_a_fragmented_message_arrives_whole() -> None:
    client, socket, _, _ = opened()
    wire = client.send(TextMessage("frag", message_finished=False)) + client.send(TextMessage("ment"))
    for byte in range(len(wire)):  # one byte at a time: frames split anywhere
        socket.data_received(wire[byte:byte + 1])
    assert await socket.receive() == "fragment"
    assert socket.received == 1


@in_loop
async def test_a_ping_is_answered_with_a_pong_and_the_app_sees_nothing() -> None:
    client, socket, transport, _ = opened()
    socket.data_received(client.send(Ping(b"are you there")))
    events = client_events(client, transport)
    assert [(type(e), e.payload) for e in events] == [(Pong, b"are you there")]
    assert not socket.incoming


@in_loop
async def test_the_client_closing_gives_the_app_its_code_and_reason() -> None:
    client, socket, transport, ended = opened()
    socket.data_received(client.send(CloseConnection(4000, "bye")))
    assert await socket.receive() == Closed(4000, "bye")
    events = client_events(client, transport)
    assert isinstance(events[0], CloseConnection) and events[0].code == 4000  # the close answered
    assert transport.eof  # the server ends TCP first (RFC 6455 §7.1.1)
    socket.connection_lost(None)
    assert ended == [socket]
    with pytest.raises(ConnectionError):
        await socket.send("too late")


@in_loop
async def test_a_server_close_is_sent_and_a_silent_client_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websocket, "CLOSE_WAIT", 0.01)
    client, socket, transport, _ = opened()
    socket.close(1012, "service restart")
    events = client_events(client, transport)
    assert [(type(e), e.code, e.reason) for e in events] == [(CloseConnection, 1012, "service restart")]
    assert await socket.receive() == Closed(1012, "service restart")  # the app's receive ends at once
    await asyncio.wait_for(transport.aborted.wait(), 10)  # the client never answered


@in_loop
async def test_a_message_over_the_limit_closes_with_1009(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websocket, "MAX_MESSAGE", 1000)
    client, socket, transport, _ = opened()
    socket.data_received(client.send(BytesMessage(b"x" * 600, message_finished=False)))
    socket.data_received(client.send(BytesMessage(b"x" * 600)))  # each fragment fits; the message does not
    events = client_events(client, transport)
    assert isinstance(events[-1], CloseConnection) and events[-1].code == 1009
    assert await socket.receive() == Closed(1009, events[-1].reason)
    assert socket.received == 0


@in_loop
async def test_invalid_utf8_in_a_text_message_closes_with_1007() -> None:
    client, socket, transport, _ = opened()
    frame = bytearray(client.send(TextMessage("ab")))
    mask = frame[2:6]
    frame[6:8] = bytes(b ^ m for b, m in zip(b"\xff\xfe", mask, strict=False))  # masked payload, not UTF-8
    socket.data_received(bytes(frame))
    events = client_events(client, transport)
    assert isinstance(events[-1], CloseConnection) and events[-1].code == 1007
    assert not socket.incoming


@in_loop
async def test_an_unread_message_stops_reading_until_the_app_takes_it() -> None:
    client, socket, transport, _ = opened()
    socket.data_received(client.send(TextMessage("one")) + client.send(TextMessage("two")))
    assert not transport.reading
    assert await socket.receive() == "one"
    assert await socket.receive() == "two"
    assert transport.reading


@in_loop
async def test_a_client_that_vanishes_ends_the_app_receive_with_1006() -> None:
    _, socket, _, ended = opened()
    waiting = asyncio.ensure_future(socket.receive())
    await asyncio.sleep(0)
    socket.connection_lost(ConnectionResetError())
    assert await asyncio.wait_for(waiting, 10) == Closed(1006, "")
    assert ended == [socket]


class FakeConnection:
    """The HTTP connection an Upgrade hands over (websocket.Upgradable)."""

    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.protocol: object = None

    def switch_protocol(self, protocol: WebSocket) -> None:
        self.protocol = protocol
        protocol.connection_made(self.transport)  # type: ignore[arg-type]


def upgrade_for(transport: FakeTransport) -> tuple[WSConnection, Upgrade, FakeConnection, list[WebSocket]]:
    client, headers = client_request()
    protocol, response = handshake("/ws", headers)
    opened_sockets: list[WebSocket] = []
    conn = FakeConnection(transport)
    request = Request("GET", "/ws", "1.1", headers, True)
    return client, Upgrade(conn, Exchange(request), protocol, response, opened_sockets.append, lambda s: None), \
        conn, opened_sockets  # type: ignore[arg-type]


@in_loop
async def test_accepting_hands_the_transport_over_and_sends_the_101_with_the_apps_choices() -> None:
    transport = FakeTransport()
    client, upgrade, conn, sockets = upgrade_for(transport)
    socket = upgrade.accept("chat", [(b"x-extra", b"yes")])
    assert conn.protocol is socket and sockets == [socket] and upgrade.exchange.status == 101
    head = bytes(transport.out).split(b"\r\n\r\n")[0].lower()
    assert b"sec-websocket-protocol: chat" in head and b"x-extra: yes" in head
    client.receive_data(transport.take())
    accepted = next(client.events())
    assert isinstance(accepted, AcceptConnection) and accepted.subprotocol == "chat"


@in_loop
async def test_a_client_gone_during_the_handshake_is_a_closed_socket_at_once() -> None:
    transport = FakeTransport()
    transport.closed = True  # its connection_lost went to the HTTP connection
    _, upgrade, _, _ = upgrade_for(transport)
    socket = upgrade.accept(None, [])
    assert await socket.receive() == Closed(1006, "")


def test_a_bad_handshake_is_answered_before_any_app() -> None:
    _, headers = client_request()
    _, response = handshake("/ws", [(n, v) for n, v in headers if n.lower() != "sec-websocket-key"])
    assert response.status_code == 400


@pytest.mark.parametrize(("method", "headers", "expected"), [
    ("GET", [("Upgrade", "websocket"), ("Connection", "Upgrade")], True),
    ("GET", [("upgrade", "WebSocket")], True),
    ("POST", [("Upgrade", "websocket")], False),
    ("GET", [("Upgrade", "h2c")], False),
    ("GET", [], False),
])
def test_wants_websocket(method: str, headers: list[tuple[str, str]], expected: bool) -> None:
    """Read from the head as the parser takes it in (it keeps the Upgrade field: http/parser.py)."""
    fields = "".join(f"{name}: {value}\r\n" for name, value in [("Host", "127.0.0.1"), *headers])
    head = next(event for event in RequestParser().feed(f"{method} /ws HTTP/1.1\r\n{fields}\r\n".encode())
                if isinstance(event, Head))
    assert wants_websocket(head.request) is expected


def test_the_scope_names_the_connection() -> None:
    request = Request("GET", "/chat%20room?x=1", "1.1", [("Host", "h"), ("Sec-WebSocket-Protocol", "a, b")], True)
    scope = websocket_scope(request, "127.0.0.1:5000", ("127.0.0.1", 8000), state={"db": 1})
    assert scope["type"] == "websocket" and scope["asgi"]["version"] == "3.0"
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/chat room", b"/chat%20room", b"x=1")
    assert scope["headers"] == [(b"host", b"h"), (b"sec-websocket-protocol", b"a, b")]
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["client"] == ("127.0.0.1", 5000) and scope["server"] == ("127.0.0.1", 8000)
    assert "websocket.http.response" in scope["extensions"]
    assert scope["state"] == {"db": 1}


# The ASGI side --------------------------------------------------------------------------
class FakeSocket:
    def __init__(self, incoming: list[str | bytes]) -> None:
        self.incoming = incoming
        self.sent: list[str | bytes] = []
        self.closes: list[tuple[int, str]] = []

    @property
    def closed(self) -> Closed | None:
        return Closed(*self.closes[0]) if self.closes else None

    async def receive(self) -> str | bytes | Closed:
        if self.incoming:
            return self.incoming.pop(0)
        return self.closed or Closed(1000, "")

    async def send(self, message: str | bytes) -> None:
        if self.closes:
            raise ConnectionError("closed")
        self.sent.append(message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closes:
            self.closes.append((code, reason))


class FakeHandshake:
    def __init__(self, incoming: list[str | bytes] = []) -> None:  # noqa: B006 - never mutated
        self.socket = FakeSocket(list(incoming))
        self.accepted: tuple[str | None, list[tuple[bytes, bytes]]] | None = None
        self.refused: tuple[int, str, str | None] | None = None
        self.response: list[Any] = []

    def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> FakeSocket:
        self.accepted = (subprotocol, headers)
        return self.socket

    def refuse(self, status: int, message: str, detail: str | None = None) -> None:
        self.refused = (status, message, detail)

    def respond(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.response.append((status, headers))

    def respond_body(self, body: bytes, more: bool) -> None:
        self.response.append((body, more))


SCOPE = {"type": "websocket"}


@in_loop
async def test_an_echo_app_accepts_with_a_subprotocol_and_echoes_until_disconnect() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        await send({"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-a", b"1")]})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
        seen.append(message)

    shake = FakeHandshake(["hi", b"\x00"])
    outcome = await serve(app, SCOPE, shake, timeout=10)
    assert outcome.status == 101 and outcome.traceback is None
    assert shake.accepted == ("chat", [(b"x-a", b"1")])
    assert shake.socket.sent == ["hi", b"\x00"]
    assert seen == [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000, "reason": ""}]


@in_loop
async def test_close_before_accept_is_a_403() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    shake = FakeHandshake()
    assert (await serve(app, SCOPE, shake, timeout=10)).status == 403
    assert shake.refused is not None and shake.refused[0] == 403 and shake.accepted is None


@in_loop
async def test_the_denial_response_extension_sends_the_apps_own_answer() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"log in ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"first"})

    shake = FakeHandshake()
    assert (await serve(app, SCOPE, shake, timeout=10)).status == 401
    assert shake.response == [(401, [(b"content-type", b"text/plain")]), (b"log in ", True), (b"first", False)]


@in_loop
async def test_an_app_raising_before_accept_is_a_500_with_its_traceback() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise ValueError("no database")

    shake = FakeHandshake()
    outcome = await serve(app, SCOPE, shake, timeout=10)
    assert outcome.status == 500 and "ValueError: no database" in (outcome.traceback or "")
    assert shake.refused is not None and shake.refused[0] == 500 and "ValueError" in (shake.refused[2] or "")


@in_loop
async def test_an_app_that_never_answers_the_handshake_gets_a_500_and_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    shake = FakeHandshake()
    outcome = await serve(app, SCOPE, shake, timeout=0.01)
    assert outcome.status == 500 and "did not accept" in (outcome.error or "")
    assert cancelled.is_set() and shake.refused is not None


@in_loop
async def test_an_app_returning_without_an_answer_gets_a_500() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    shake = FakeHandshake()
    outcome = await serve(app, SCOPE, shake, timeout=10)
    assert outcome.status == 500 and "returned without" in (outcome.error or "")


@in_loop
async def test_an_app_raising_after_accept_closes_with_1011() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise KeyError("boom")

    shake = FakeHandshake()
    outcome = await serve(app, SCOPE, shake, timeout=10)
    assert outcome.status == 101 and "KeyError" in (outcome.traceback or "")
    assert shake.socket.closes == [(1011, "")]


@in_loop
async def test_a_message_out_of_place_raises_in_the_app() -> None:
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "websocket.send", "text": "before accept"})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "websocket.close"})

    await serve(app, SCOPE, FakeHandshake(), timeout=10)
    assert errors and "websocket.send" in errors[0]


@in_loop
async def test_an_app_running_on_after_its_socket_closed_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asgi_websocket, "APP_GRACE", 0.01)
    cancelled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1012})
        try:
            await asyncio.Event().wait()  # a broadcast loop that never looks at receive()
        finally:
            cancelled.set()

    shake = FakeHandshake()
    assert (await serve(app, SCOPE, shake, timeout=10)).status == 101
    assert cancelled.is_set() and shake.socket.closes == [(1012, "")]


# The logs ----------------------------------------------------------------------------------
def websocket_event() -> Any:
    from devserver.ipc.events import RequestEvent, WebSocketMessage, WebSocketSummary

    summary = WebSocketSummary(3, 2, 1012, "service restart", (WebSocketMessage(0.5, "in", 5, True, "hello"),))
    return RequestEvent(1.0, 42, "127.0.0.1:5000", "GET", "/ws", "1.1", 101, 166, 2500.0, websocket=summary)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_logs_say_a_websocket_connection_and_how_it_ended(log_format: str) -> None:
    import io
    import json

    from devserver.console.log import ConsoleLog

    out = io.StringIO()
    log = ConsoleLog(out, log_format)
    log([websocket_event()])
    log.close()
    text = out.getvalue()
    if log_format == "text":
        assert "GET /ws 101" in text and "websocket 3 in / 2 out, closed 1012" in text
    else:
        record = json.loads(text.splitlines()[0])
        assert record["status"] == 101
        assert record["websocket"]["close_code"] == 1012 and record["websocket"]["messages_in"] == 3
        assert record["websocket"]["messages"][0] == {"at": 0.5, "direction": "in", "size": 5, "text": True,
                                                      "shown": "hello"}


def test_a_websocket_event_pickles_whole() -> None:
    import pickle

    event = websocket_event()
    assert pickle.loads(pickle.dumps(event)) == event
