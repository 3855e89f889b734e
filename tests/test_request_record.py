"""The RequestEvent a worker records, field by field by name, whatever the order of RequestEvent's fields.

The worker sends an event as its field values (events.Wire) and the
supervisor builds it (events.received): both sides take the order from the
class, and the worker names every value (kit/frozen.values_by_name).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from devserver.handlers.exchange import Exchange
from devserver.http.framing import BodyWriter, framing_of
from devserver.http.parser import Request
from devserver.ipc.config import Config
from devserver.ipc.events import BodyRecord, InsideRecord, QueryRecord, RequestEvent, WebSocketSummary, received
from devserver.ipc.reports import ErrorReport
from devserver.kit.frozen import constructor_from_values, values_by_name
from devserver.worker.process import EXCHANGE_FIELDS, Worker


def answered_exchange() -> tuple[Exchange, dict[str, Any]]:
    """An exchange answered with a different value in every field an event takes, and those values by field."""
    request = Request(method="PATCH", target="/items/7?x=1", version="1.0",
                      headers=[("Host", "127.0.0.1"), ("X-Asked", "yes")], keep_alive=True, request_line="PATCH /x")
    exchange = Exchange(request)
    exchange.writer = BodyWriter(framing_of(201, [("X-Answered", "yes")], method="PATCH", version="1.0", close=False,
                                       body_length=3))
    exchange.status = 201
    exchange.sent = 4321
    exchange.preview = b"preview"
    exchange.traceback = "Traceback: text"
    exchange.error = "an error"
    exchange.report = ErrorReport("KeyError: 'k'", (), 2)
    asked, answered = BodyRecord("/spool", 0, 1, 1), BodyRecord("/spool", 1, 2, 2)
    exchange.capture = SimpleNamespace(finish=lambda: (asked, answered))  # type: ignore[assignment]
    exchange.logs = SimpleNamespace(snapshot=lambda: ("a line",), id="req-9",  # type: ignore[assignment]
                                    snapshot_sources=lambda: (("warning", "shop", "shop.py:3"),))
    exchange.inside = InsideRecord(4.5, (QueryRecord("SELECT 1", 0.2, 1.0),))
    expected = {"client": "10.0.0.9:4242", "method": "PATCH", "target": "/items/7?x=1", "http_version": "1.0",
                "status": 201, "bytes_sent": 4321, "request_headers": (("Host", "127.0.0.1"), ("X-Asked", "yes")),
                "body_preview": b"preview", "traceback": "Traceback: text", "error": "an error",
                "request_body": asked, "response_body": answered, "error_report": exchange.report,
                "logs": ("a line",), "log_sources": (("warning", "shop", "shop.py:3"),), "request_id": "req-9",
                "request_line": "PATCH /x",
                "websocket": WebSocketSummary(3, 4, 1000, "bye"), "inside": exchange.inside}
    return exchange, expected


def test_a_worker_records_every_field_by_its_name(tmp_path: Any) -> None:
    """Worker.record, through the pipe's values and the supervisor's build: each field holds its own value."""
    exchange, expected = answered_exchange()
    batches: list[list[Any]] = []

    async def record() -> Worker:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            worker = Worker(Config(root=str(tmp_path), dynamic=str(tmp_path)), sock,
                            SimpleNamespace(put_nowait=batches.append), None, None)
            worker.record(SimpleNamespace(client="10.0.0.9:4242"), exchange, expected["websocket"])  # type: ignore[arg-type]
            worker.sink.flush()
            return worker

    worker = asyncio.run(record())
    [event] = received(batches[0])
    assert isinstance(event, RequestEvent)
    assert {name: getattr(event, name) for name in expected} == expected
    assert event.worker_pid == worker.pid and event.time > 0 and event.duration_ms >= 0
    sent = dict(event.response_headers)
    assert sent["X-Answered"] == "yes" and sent["Content-Length"] == "3"  # the head as framed, not the request's
    assert {f.name for f in dataclasses.fields(RequestEvent)} == {*expected, "worker_pid", "time", "duration_ms",
                                                                  "response_headers"}  # every field checked


def reordered(cls: type) -> type:
    """``cls`` with its fields in the reverse order (no defaults, so any order is a valid dataclass)."""
    return dataclasses.make_dataclass(cls.__name__, [(f.name, f.type) for f in reversed(dataclasses.fields(cls))],
                                      frozen=True, slots=True)


def test_the_values_follow_the_fields_whatever_their_order() -> None:
    """What the worker sends for RequestEvent built as RequestEvent, and as the same fields in reverse order."""
    exchange, expected = answered_exchange()
    given = {name: value for name, value in expected.items() if name not in EXCHANGE_FIELDS}
    given |= {"time": 1.5, "worker_pid": 7, "duration_ms": 2.5, "response_headers": (("X-Answered", "yes"),)}
    for cls in (RequestEvent, reordered(RequestEvent)):
        event = constructor_from_values(cls)(cls, values_by_name(cls, EXCHANGE_FIELDS)(exchange, **given))
        assert {name: getattr(event, name) for name in expected} == expected, cls
        assert (event.time, event.worker_pid, event.duration_ms) == (1.5, 7, 2.5)


def test_a_missing_or_unknown_field_name_fails_loudly() -> None:
    exchange, _ = answered_exchange()
    values = values_by_name(RequestEvent, EXCHANGE_FIELDS)
    with pytest.raises(TypeError, match="duration_ms"):
        values(exchange, time=1.0, worker_pid=1, client="", request_headers=(), response_headers=(),
               request_body=None, response_body=None, logs=(), request_id="")
    with pytest.raises(ValueError, match="statuss"):
        values_by_name(RequestEvent, {**EXCHANGE_FIELDS, "statuss": "status"})
    with pytest.raises(ValueError, match="not dotted names"):
        values_by_name(RequestEvent, {"status": "status; import os"})
