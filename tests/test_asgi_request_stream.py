"""An ASGI app reads its request body as it arrives: bytes into a real Connection, events out to the app (in memory)."""

from __future__ import annotations

import asyncio
import errno
import tempfile
from typing import Any

import pytest
from test_connection_memory import DEFAULT_LIMITS, connect, loop, responses, settle

from devserver.handlers.asgi import ASGIApplication, ASGIServer, start_asgi
from devserver.handlers.exchange import STREAM_BOUND, Exchange
from devserver.http.parser import CONTINUE, Limits
from devserver.worker.connection import Connection

__all__ = ["loop"]  # the fixture, shared with test_connection_memory

SERVER = ASGIServer(("127.0.0.1", 8000), lambda line: None, request_detail=False)
HEAD = b"POST /stream HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class SizesApp:
    """Answers each body part with its size on a line of a streamed response, as the part arrives.

    ``reading`` gates its receive(): cleared, the app takes nothing (a slow app).
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.reading = asyncio.Event()
        self.reading.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        while True:
            await self.reading.wait()
            event = await receive()
            self.events.append(event)
            if event["type"] != "http.request":
                return
            more = event["more_body"]
            await send({"type": "http.response.body", "body": b"%d\n" % len(event["body"]), "more_body": more})
            if not more:
                return


def asgi_route(app: Any) -> Any:
    def answer(conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.hold()
        start_asgi(conn, exchange, ASGIApplication(app, "test"), "", SERVER, conn.release)
        return True
    return answer


def streaming(loop: asyncio.AbstractEventLoop, app: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, Connection, Any]:
    worker, conn, transport = connect(loop, {"/stream": asgi_route(app)}, limits)
    worker.streamed.add("/stream")
    return worker, conn, transport


def bodies(app: SizesApp) -> list[tuple[bytes, bool]]:
    return [(event["body"], event["more_body"]) for event in app.events if event["type"] == "http.request"]


def test_each_part_reaches_the_app_as_it_arrives_and_its_answer_goes_out_before_the_next(
        loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    worker, conn, transport = streaming(loop, app)
    conn.data_received(HEAD + chunk(b"aaaa"))
    settle(loop, lambda: bodies(app) == [(b"aaaa", True)])
    settle(loop, lambda: b"\r\n4\n\r\n" in bytes(transport.written))  # the answer to the first part, chunked
    assert not app.events[1:]  # nothing more until more arrives
    conn.data_received(chunk(b"bb"))
    settle(loop, lambda: bodies(app) == [(b"aaaa", True), (b"bb", True)])
    conn.data_received(b"0\r\n\r\n")
    settle(loop, lambda: bodies(app)[-1] == (b"", False) and worker.recorded)
    assert worker.recorded == [("/stream", 200, None)]
    assert conn.current is None and not transport.closed  # kept alive: the next request is answered
    conn.data_received(b"GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n")
    settle(loop, lambda: len(worker.recorded) == 2)
    (status, _, body), (next_status, _, next_body) = responses(transport.take(), ["POST", "GET"])
    assert (status, body) == (200, b"4\n2\n0\n")
    assert (next_status, next_body) == (200, b"ok")


def test_a_pipelined_request_after_the_body_is_never_read_into_it(loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    worker, conn, transport = streaming(loop, app)
    conn.data_received(HEAD + chunk(b"abc") + b"0\r\n\r\nGET /next HTTP/1.1\r\nHost: localhost\r\n\r\n")
    settle(loop, lambda: len(worker.recorded) == 2)
    assert bodies(app) == [(b"abc", False)]
    assert [target for target, _, _ in worker.recorded] == ["/stream", "/next"]
    (_, _, body), (_, _, next_body) = responses(transport.take(), ["POST", "GET"])
    assert (body, next_body) == (b"3\n", b"ok")


def test_reading_stops_while_the_app_leaves_the_bound_untaken_and_starts_again_when_it_takes(
        loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    app.reading.clear()
    worker, conn, transport = streaming(loop, app)
    part = b"x" * 16384
    conn.data_received(HEAD)
    for _ in range(STREAM_BOUND // len(part)):
        conn.data_received(chunk(part))
    assert not transport.reading
    app.reading.set()
    settle(loop, lambda: transport.reading)
    assert bodies(app) == [(part * (STREAM_BOUND // len(part)), True)]
    conn.data_received(b"0\r\n\r\n")
    settle(loop, lambda: worker.recorded)
    assert worker.recorded == [("/stream", 200, None)]


def test_a_body_over_the_limit_is_413_when_the_app_has_not_answered(loop: asyncio.AbstractEventLoop) -> None:
    events: list[dict[str, Any]] = []
    limits = Limits(DEFAULT_LIMITS.max_request_line, DEFAULT_LIMITS.max_header_bytes, DEFAULT_LIMITS.max_header_count,
                    100)
    worker, conn, transport = streaming(loop, reader_app(events), limits)
    conn.data_received(HEAD + chunk(b"a" * 60))
    settle(loop, lambda: len(events) == 1)
    conn.data_received(chunk(b"b" * 60))
    settle(loop, lambda: events[-1]["type"] == "http.disconnect" and worker.recorded)
    assert [event.get("body") for event in events] == [b"a" * 60, None]
    status, headers, _ = responses(transport.take(), ["POST"])[0]
    assert status == 413 and headers["connection"] == "close"
    assert transport.closed
    assert len(worker.recorded) == 1 and worker.recorded[0][1] == 413


def test_a_body_over_the_limit_after_the_response_began_closes_the_connection(loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    limits = Limits(DEFAULT_LIMITS.max_request_line, DEFAULT_LIMITS.max_header_bytes, DEFAULT_LIMITS.max_header_count,
                    100)
    worker, conn, transport = streaming(loop, app, limits)
    conn.data_received(HEAD + chunk(b"a" * 60))
    settle(loop, lambda: bodies(app) == [(b"a" * 60, True)])
    conn.data_received(chunk(b"b" * 60))
    settle(loop, lambda: transport.closed and worker.recorded and app.events[-1]["type"] == "http.disconnect")
    assert b"413" not in bytes(transport.written)  # a second response would follow the first's head


def test_an_answer_before_the_body_is_in_closes_the_connection_after_it(loop: asyncio.AbstractEventLoop) -> None:
    async def early(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"early"})

    worker, conn, transport = streaming(loop, early)
    conn.data_received(HEAD + chunk(b"a"))
    settle(loop, lambda: worker.recorded)
    status, headers, body = responses(transport.take(), ["POST"])[0]
    assert (status, body, headers["connection"]) == (200, b"early", "close")
    assert transport.closed  # the rest of the body cannot be told from a next request


def test_a_declared_length_body_arrives_in_parts_too(loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    worker, conn, transport = streaming(loop, app)
    conn.data_received(b"POST /stream HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nab")
    settle(loop, lambda: bodies(app) == [(b"ab", True)])
    conn.data_received(b"cde")
    settle(loop, lambda: worker.recorded)
    assert bodies(app) == [(b"ab", True), (b"cde", False)]


def test_a_request_queued_behind_another_gets_its_body_whole(loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    worker, conn, transport = streaming(loop, app)
    worker.routes["/slow"] = lambda c, e: (c.begin(e), False)[1]  # held: answered below
    conn.data_received(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n" + HEAD + chunk(b"ab"))
    conn.data_received(chunk(b"cd") + b"0\r\n\r\n")
    assert not app.events  # an answer is owed before it: it waits, its body spooled whole
    conn.send(200, [], b"slow")
    conn.end()
    conn.release()
    settle(loop, lambda: len(worker.recorded) == 2)
    assert bodies(app) == [(b"abcd", False)]


def reader_app(events: list[dict[str, Any]]) -> Any:
    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while True:
            event = await receive()
            events.append(event)
            if event["type"] == "http.disconnect":
                return
    return reader


def test_a_body_that_stalls_is_answered_408_by_the_bodys_deadline(loop: asyncio.AbstractEventLoop) -> None:
    events: list[dict[str, Any]] = []
    worker, conn, transport = streaming(loop, reader_app(events))
    conn.data_received(HEAD + chunk(b"a"))
    settle(loop, lambda: len(events) == 1)
    assert conn.deadline  # the body's wait runs while the app waits on it
    conn.expire(conn.deadline + 1)
    settle(loop, lambda: worker.recorded and events[-1]["type"] == "http.disconnect")
    status, headers, _ = responses(transport.take(), ["POST"])[0]
    assert status == 408 and headers["connection"] == "close"


def test_100_continue_goes_out_at_the_head_before_the_app_reads(loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    worker, conn, transport = streaming(loop, app)
    conn.data_received(HEAD.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
    assert bytes(transport.written) == CONTINUE
    conn.data_received(chunk(b"abc") + b"0\r\n\r\n")
    settle(loop, lambda: worker.recorded)
    assert bodies(app) == [(b"abc", False)]
    assert bytes(transport.written).count(CONTINUE) == 1


def test_a_stalled_body_is_answered_408_at_once_though_the_app_is_not_reading(loop: asyncio.AbstractEventLoop) -> None:
    gate = asyncio.Event()

    async def waits(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()  # neither reads nor answers: the server does not wait on it to refuse the body

    worker, conn, transport = streaming(loop, waits)
    conn.data_received(HEAD + chunk(b"a"))
    conn.expire(conn.deadline + 1)
    settle(loop, lambda: worker.recorded)
    status, _, _ = responses(transport.take(), ["POST"])[0]
    assert status == 408 and transport.closed
    gate.set()  # the app returns with no response of its own: nothing more is answered or recorded
    settle(loop, lambda: all(task.done() for task in asyncio.all_tasks(loop)))
    assert worker.recorded == [("/stream", 408, "Request not received in time")]
    assert transport.take() == b""


def test_a_stalled_body_after_the_response_began_closes_the_connection(loop: asyncio.AbstractEventLoop) -> None:
    gate = asyncio.Event()
    events: list[dict[str, Any]] = []

    async def begins(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"begun", "more_body": True})
        await gate.wait()  # then waits on something else
        events.append(await receive())

    worker, conn, transport = streaming(loop, begins)
    conn.data_received(HEAD + chunk(b"a"))
    settle(loop, lambda: b"begun" in bytes(transport.written))
    conn.expire(conn.deadline + 1)
    settle(loop, lambda: transport.closed and worker.recorded)
    assert b"408" not in bytes(transport.written)  # a second response would follow the first's head
    gate.set()
    settle(loop, lambda: events == [{"type": "http.request", "body": b"a", "more_body": True}])


def test_no_deadline_runs_while_reading_waits_on_a_slow_app(loop: asyncio.AbstractEventLoop) -> None:
    app = SizesApp()
    app.reading.clear()
    worker, conn, transport = streaming(loop, app)
    conn.data_received(HEAD + chunk(b"x" * STREAM_BOUND))
    assert not transport.reading and not conn.deadline  # the client is not late: the app is behind
    app.reading.set()
    settle(loop, lambda: transport.reading)
    assert conn.deadline  # the body's wait runs again


def test_a_streamed_body_that_cannot_be_stored_is_the_servers_507(loop: asyncio.AbstractEventLoop,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[dict[str, Any]] = []
    worker, conn, transport = streaming(loop, reader_app(events))
    conn.data_received(HEAD + chunk(b"a"))
    settle(loop, lambda: len(events) == 1)

    def full(self: Any, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "write", full)
    conn.data_received(chunk(b"b"))
    settle(loop, lambda: worker.recorded and events[-1]["type"] == "http.disconnect")
    status, headers, body = responses(transport.take(), ["POST"])[0]
    assert status == 507 and b"No space left on device" in body and headers["connection"] == "close"
    assert worker.recorded == [("/stream", 507, "The request body could not be stored: No space left on device")]
