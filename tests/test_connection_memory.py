"""The worker's connection in memory: bytes in through a fake transport, wire bytes and the close out.

As uvicorn tests its protocols (a MockTransport): no socket, the real
``Connection`` (worker/connection.py) with its ``Cycle`` (http/cycle.py),
``Exchange`` (handlers/exchange.py) and framing (http/framing.py), and a
small worker whose handlers are the tests' own.  What went out is read back
by an independent client (h11).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import h11
import pytest

from devserver.handlers.exchange import Exchange
from devserver.http.framing import Delimit, framing_of
from devserver.http.parser import CONTINUE, Limits
from devserver.ipc.config import Config
from devserver.worker.connection import Connection

DEFAULT_LIMITS = Limits()
Answer = Callable[[Connection, Exchange], bool]  # True: answered now; False: the handler holds the exchange


class FakeTransport(asyncio.Transport):
    """Keeps what is written and what is asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.reading = True
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def take(self) -> bytes:
        data, self.written = bytes(self.written), bytearray()
        return data


def ok(conn: Connection, exchange: Exchange) -> bool:
    """200 with the request's body (or "ok")."""
    conn.begin(exchange)
    conn.send(200, [("Content-Type", "text/plain")], exchange.input().read() or b"ok")
    conn.end()
    return True


class Worker:
    """The Handler a Connection needs: answers by path from ``routes`` (default ``ok``), keeps what it records."""

    def __init__(self, loop: asyncio.AbstractEventLoop, routes: dict[str, Answer] | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.loop = loop
        self.limits = limits
        self.config = Config()
        self.draining = False
        self.retiring = False
        self.routes = routes or {}
        self.open: set[Connection] = set()
        self.recorded: list[tuple[str, int, str | None]] = []
        self.streamed: set[str] = set()  # paths answered at their head, their bodies read as they come

    def opened(self, conn: Connection) -> None:
        self.open.add(conn)

    def closed(self, conn: Connection) -> None:
        self.open.discard(conn)

    def try_sync(self, conn: Connection, exchange: Exchange) -> bool:
        if self.routes.get(exchange.request.path, ok)(conn, exchange):
            return True
        conn.hold()
        return True

    def streams_body(self, exchange: Exchange) -> bool:
        return exchange.request.path in self.streamed

    async def handle(self, conn: Connection, exchange: Exchange) -> None:
        raise AssertionError("every request is taken by try_sync")

    def record(self, conn: Connection, exchange: Exchange) -> None:
        self.recorded.append((exchange.request.target, exchange.status, exchange.error))

    def park(self, conn: Connection) -> bool:
        return False


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def connect(loop: asyncio.AbstractEventLoop, routes: dict[str, Answer] | None = None,
            limits: Limits = DEFAULT_LIMITS) -> tuple[Worker, Connection, FakeTransport]:
    worker = Worker(loop, routes, limits)
    conn = Connection(worker)
    transport = FakeTransport()
    conn.connection_made(transport)
    return worker, conn, transport


def settle(loop: asyncio.AbstractEventLoop, condition: Callable[[], bool]) -> None:
    """Run the loop's callbacks (a refusal is answered in a task) until ``condition``, with a deadline."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        loop.run_until_complete(asyncio.sleep(0))


def responses(wire: bytes, methods: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """The responses h11, as the client that sent ``methods``, reads from ``wire``: status, headers, body."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(wire)
    out = []
    for method in methods:
        client.send(h11.Request(method=method, target="/", headers=[("Host", "localhost")]))
        client.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {name.decode().lower(): value.decode() for name, value in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"the response stream broke off at {event!r}")
        out.append((status, headers, body))
        if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
            break
        client.start_next_cycle()
    return out


def get(path: str, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return b"GET " + path.encode() + b" HTTP/" + version + b"\r\nHost: localhost\r\n" + extra + b"\r\n"


# pipelining ------------------------------------------------------------------------------------
def test_pipelined_requests_are_answered_in_order_on_one_connection(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(get("/1") + get("/2") + get("/3"))
    assert [r[0] for r in responses(transport.take(), ["GET"] * 3)] == [200, 200, 200]
    assert [target for target, _, _ in worker.recorded] == ["/1", "/2", "/3"]
    assert not transport.closed and conn.idle()


def test_a_held_answer_keeps_the_next_one_behind_it(loop: asyncio.AbstractEventLoop) -> None:
    held: list[Exchange] = []

    def later(conn: Connection, exchange: Exchange) -> bool:
        held.append(exchange)
        return False

    worker, conn, transport = connect(loop, {"/slow": later})
    conn.data_received(get("/slow") + get("/fast"))
    assert transport.take() == b"" and len(held) == 1  # /fast waits for /slow
    conn.begin(held[0])
    conn.send(200, [], b"slow")
    conn.end()
    conn.release()
    assert [r[2] for r in responses(transport.take(), ["GET", "GET"])] == [b"slow", b"ok"]


def test_reading_pauses_when_the_pipeline_is_full(loop: asyncio.AbstractEventLoop) -> None:
    held: list[Exchange] = []
    worker, conn, transport = connect(loop, {"/slow": lambda conn, exchange: held.append(exchange) is not None})
    conn.data_received(get("/slow") * 40)
    assert not transport.reading
    for _ in range(40):
        exchange = held.pop()
        conn.begin(exchange)
        conn.send(200, [], b"")
        conn.end()
        conn.release()
    assert transport.reading


# 100 Continue --------------------------------------------------------------------------------------
POST_CONTINUE = b"POST /up HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"


def test_100_continue_is_sent_before_the_body_and_the_answer_after_it(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(POST_CONTINUE)
    assert transport.take() == CONTINUE
    conn.data_received(b"data")
    assert responses(transport.take(), ["POST"])[0][::2] == (200, b"data")


def test_100_continue_waits_until_the_earlier_response_is_out(loop: asyncio.AbstractEventLoop) -> None:
    held: list[Exchange] = []
    worker, conn, transport = connect(loop, {"/slow": lambda conn, exchange: held.append(exchange) is not None})
    conn.data_received(get("/slow") + POST_CONTINUE)
    assert transport.take() == b""  # not before /slow's answer (RFC 9110 §10.1.1)
    conn.begin(held[0])
    conn.send(200, [], b"slow")
    conn.end()
    conn.release()
    wire = transport.take()
    assert wire.endswith(b"slow" + CONTINUE)
    conn.data_received(b"data")
    assert responses(transport.take(), ["POST"])[0][::2] == (200, b"data")


def test_no_100_continue_for_a_head_refused_before_its_body(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop, limits=Limits(max_body=3))
    conn.data_received(POST_CONTINUE)
    settle(loop, lambda: transport.closed)
    wire = transport.take()
    assert not wire.startswith(CONTINUE)
    status, headers, _ = responses(wire, ["POST"])[0]
    assert status == 413 and headers["connection"] == "close"  # the unread body is never taken for a request


def test_an_answer_that_ignores_the_body_leaves_the_next_request_intact(loop: asyncio.AbstractEventLoop) -> None:
    def ignore_body(conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.send(201, [], b"made")
        conn.end()
        return True

    worker, conn, transport = connect(loop, {"/up": ignore_body})
    conn.data_received(POST_CONTINUE)
    assert transport.take() == CONTINUE
    conn.data_received(b"data" + get("/next"))
    assert [r[::2] for r in responses(transport.take(), ["POST", "GET"])] == [(201, b"made"), (200, b"ok")]
    assert not transport.closed


# the 408 and idle deadlines ----------------------------------------------------------------------------
def test_a_stalled_head_is_answered_408_then_closed(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(b"GET /slow HTTP/1.1\r\nHo")
    conn.expire(conn.deadline - 0.001)
    assert not transport.closed  # not yet
    conn.expire(conn.deadline)
    settle(loop, lambda: transport.closed)
    status, headers, _ = responses(transport.take(), ["GET"])[0]
    assert status == 408 and headers["connection"] == "close"
    assert worker.recorded == [("-", 408, "Request not received in time")]


def test_a_head_sent_a_byte_at_a_time_keeps_its_first_deadline(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(b"G")
    first = conn.deadline
    for byte in b"ET /slow HTTP/1.1\r\n":
        conn.data_received(bytes([byte]))
    assert conn.deadline == first


def test_a_stalled_body_is_answered_408_and_each_byte_restarts_its_deadline(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n1")
    before = conn.deadline
    mark = time.monotonic()
    settle(loop, lambda: time.monotonic() > mark)
    conn.data_received(b"2")
    assert conn.deadline > before
    conn.expire(conn.deadline)
    settle(loop, lambda: transport.closed)
    assert responses(transport.take(), ["POST"])[0][0] == 408


def test_an_idle_connection_is_closed_without_a_word(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    fresh = conn.deadline
    assert fresh > 0
    conn.data_received(get("/1"))
    transport.take()
    assert conn.deadline > 0 and conn.waiting is not None and conn.waiting.keepalive
    conn.expire(conn.deadline)
    assert transport.closed and transport.take() == b""


def test_a_fresh_connection_that_sends_nothing_is_closed_without_a_word(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    assert conn.waiting is not None and not conn.waiting.keepalive  # the header timeout
    conn.expire(conn.deadline)
    assert transport.closed and transport.take() == b""


def test_no_deadline_runs_while_an_answer_is_owed(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop, {"/slow": lambda conn, exchange: False})
    conn.data_received(get("/slow"))
    assert conn.deadline == 0.0
    conn.expire(time.monotonic() + 3600)
    assert not transport.closed and transport.take() == b""


# HEAD, 204, 304 -----------------------------------------------------------------------------------------
def respond_with(status: int, headers: list[tuple[str, str]], body: bytes) -> Answer:
    def answer(conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.send(status, headers, body)
        conn.end()
        return True

    return answer


def test_head_gets_the_length_a_get_would_and_no_body(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop, {"/": respond_with(200, [], b"hello")})
    conn.data_received(b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n" + get("/"))
    wire = transport.take()
    assert wire.split(b"\r\n\r\n")[1].startswith(b"HTTP/1.1 200 ")  # no body: the next head follows at once
    assert [r[::2] for r in responses(wire, ["HEAD", "GET"])] == [(200, b""), (200, b"hello")]
    assert responses(wire, ["HEAD"])[0][1]["content-length"] == "5"


@pytest.mark.parametrize("status", [204, 304])
def test_a_bodiless_status_sends_no_body_whatever_the_handler_gives(loop: asyncio.AbstractEventLoop, status: int) -> None:
    worker, conn, transport = connect(loop, {"/": respond_with(status, [("ETag", '"1"')], b"ignored")})
    conn.data_received(get("/") + get("/next"))
    wire = transport.take()
    assert b"ignored" not in wire
    (first_status, first_headers, _), (second_status, _, second_body) = responses(wire, ["GET", "GET"])
    assert (first_status, second_status, second_body) == (status, 200, b"ok")
    assert "transfer-encoding" not in first_headers and (status == 304 or "content-length" not in first_headers)


def test_framing_of_bodiless_answers() -> None:
    assert framing_of(204, [("Content-Length", "3")], method="GET", version="1.1", close=False).delimit is Delimit.NONE
    assert b"Content-Length" not in framing_of(204, [("Content-Length", "3")], method="GET", version="1.1", close=False).head
    assert b"Content-Length: 3" in framing_of(304, [("Content-Length", "3")], method="GET", version="1.1", close=False).head
    head = framing_of(200, [], method="HEAD", version="1.1", close=False, body_length=5)
    assert head.delimit is Delimit.NONE and b"Content-Length: 5" in head.head


# closing -------------------------------------------------------------------------------------------------
def test_http_10_closes_after_its_answer_and_reads_nothing_after(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(get("/1", version=b"1.0") + get("/2"))
    assert transport.closed
    wire = transport.take()
    assert wire.startswith(b"HTTP/1.0 200 ") and b"Connection: close\r\n" in wire
    assert [target for target, _, _ in worker.recorded] == ["/1"]


def test_http_10_keep_alive_is_kept(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(get("/1", b"Connection: keep-alive\r\n", b"1.0"))
    assert not transport.closed and b"Connection: keep-alive\r\n" in transport.take()


def test_http_10_without_a_length_ends_its_body_with_the_close(loop: asyncio.AbstractEventLoop) -> None:
    def streamed(conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.start(200, [], b"part 1, ")
        conn.write(b"part 2")
        conn.finish()
        return True

    worker, conn, transport = connect(loop, {"/": streamed})
    conn.data_received(get("/", b"Connection: keep-alive\r\n", b"1.0"))
    wire = transport.take()
    assert transport.closed and wire.endswith(b"\r\n\r\npart 1, part 2") and b"Connection: close\r\n" in wire


def test_connection_close_from_the_client_closes_after_its_answer(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop)
    conn.data_received(get("/1", b"Connection: close\r\n") + get("/2"))
    assert transport.closed
    assert responses(transport.take(), ["GET", "GET"])[0][1]["connection"] == "close"
    assert len(worker.recorded) == 1


def test_connection_close_from_the_handler_is_sent_once_and_closes(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop, {"/": respond_with(200, [("Connection", "close")], b"bye")})
    conn.data_received(get("/") + get("/2"))
    wire = transport.take()
    assert transport.closed and wire.count(b"Connection:") == 1 and b"Connection: close\r\n" in wire
    assert len(worker.recorded) == 1


def test_a_handlers_connection_keep_alive_is_not_passed_on(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop, {"/": respond_with(200, [("Connection", "keep-alive")], b"hi")})
    conn.data_received(get("/"))
    assert not transport.closed and b"Connection" not in transport.take()


def test_a_half_closed_client_gets_its_answers_then_the_close(loop: asyncio.AbstractEventLoop) -> None:
    held: list[Exchange] = []
    worker, conn, transport = connect(loop, {"/slow": lambda conn, exchange: held.append(exchange) is not None})
    conn.data_received(get("/slow") + get("/2"))
    conn.eof_received()
    assert not transport.closed
    conn.begin(held[0])
    conn.send(200, [], b"slow")
    conn.end()
    conn.release()
    assert transport.closed
    assert [r[2] for r in responses(transport.take(), ["GET", "GET"])] == [b"slow", b"ok"]


# short and long bodies ----------------------------------------------------------------------------------
def streamed_body(declared: int, pieces: list[bytes]) -> Answer:
    def answer(conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.start(200, [("Content-Length", str(declared))])
        for piece in pieces:
            conn.write(piece)
        conn.finish()
        return True

    return answer


def test_a_body_shorter_than_its_content_length_ends_the_connection(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop, {"/": streamed_body(10, [b"12345"])})
    conn.data_received(get("/") + get("/2"))
    assert transport.closed and transport.take().endswith(b"\r\n\r\n12345")
    assert worker.recorded == [("/", 200, "The response declared Content-Length 10 but ended after 5 bytes; "
                                          "the connection closed")]


def test_a_body_longer_than_its_content_length_is_cut_and_the_connection_goes_on(loop: asyncio.AbstractEventLoop) -> None:
    worker, conn, transport = connect(loop, {"/": streamed_body(5, [b"123", b"4567890"])})
    conn.data_received(get("/") + get("/2"))
    assert not transport.closed
    assert [r[2] for r in responses(transport.take(), ["GET", "GET"])] == [b"12345", b"ok"]
    assert worker.recorded[0][2] == "The response declared Content-Length 5 but offered 10 bytes; cut at 5"


def test_a_streamed_body_without_a_length_is_chunked(loop: asyncio.AbstractEventLoop) -> None:
    def chunked(conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.start(200, [], b"ab")
        conn.write(b"cd")
        conn.finish()
        return True

    worker, conn, transport = connect(loop, {"/": chunked})
    conn.data_received(get("/") + get("/2"))
    wire = transport.take()
    assert b"Transfer-Encoding: chunked\r\n" in wire
    assert [r[2] for r in responses(wire, ["GET", "GET"])] == [b"abcd", b"ok"]


# handing the transport on ------------------------------------------------------------------------------
def test_switch_protocol_hands_the_open_transport_to_another_protocol(loop: asyncio.AbstractEventLoop) -> None:
    class Other(asyncio.Protocol):
        def __init__(self) -> None:
            self.transport: asyncio.BaseTransport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

    other = Other()

    def upgrade(conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.send(101, [("Connection", "Upgrade"), ("Upgrade", "websocket")])
        conn.switch_protocol(other)
        conn.worker.record(conn, exchange)  # the caller's: a WebSocket records its row when it closes
        return True

    worker, conn, transport = connect(loop, {"/ws": upgrade})
    conn.data_received(get("/ws", b"Connection: Upgrade\r\nUpgrade: websocket\r\n"))
    head = transport.take()
    assert head.startswith(b"HTTP/1.1 101 ") and head.endswith(b"\r\n\r\n")
    assert b"Connection: Upgrade\r\n" in head and b"Upgrade: websocket\r\n" in head and b"close" not in head
    assert other.transport is transport and transport.protocol is other and not transport.closed
    assert conn not in worker.open and worker.recorded == [("/ws", 101, None)]  # once: switching records nothing
    conn.data_received(get("/again"))  # a late callback: nothing of HTTP is read any more
    assert transport.take() == b""
