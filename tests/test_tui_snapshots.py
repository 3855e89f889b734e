"""SVG snapshots of the dashboard (pytest-textual-snapshot).

Time is frozen: the app's clock is injected, events carry fixed timestamps
and local time is UTC, so the pictures do not depend on when or where the
tests run.  Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the SVGs in ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from devserver.debug.capture import BodyRecorder, BodyStore
from devserver.ipc.config import Config
from devserver.ipc.events import (
    BodyRecord,
    DroppedEvents,
    Event,
    LogEvent,
    ReloadEvent,
    RequestEvent,
    ServerEvent,
    WorkerEvent,
    WorkerStatus,
)
from devserver.ipc.reports import ErrorReport, Frame
from tui.app import DashboardApp

BASE = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
NOW = BASE + 83.0
SIZE = (120, 36)

STATUSES = (200, 200, 304, 200, 404, 200, 201, 500, 200, 302, 200, 200, 503, 200, 200, 400, 200, 200, 200, 500)
TARGETS = ("/", "/style.css", "/logo.png", "/hello.py?name=world", "/missing", "/api/items", "/api/items", "/boom.py")


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def traffic() -> list[Event]:
    events: list[Event] = [
        ServerEvent(BASE, "listening", url="http://127.0.0.1:8899/", workers=2),
        WorkerEvent(BASE + 0.1, 4101, "started", index=0),
        WorkerEvent(BASE + 0.1, 4102, "started", index=1),
        ReloadEvent(BASE + 20, ("dynamic/hello.py",), ("hello",), 2.4),
        ReloadEvent(
            BASE + 40,
            ("dynamic/boom.py",),
            (),
            1.1,
            error='Traceback (most recent call last):\n  File "dynamic/boom.py", line 3\n    def application(environ\n'
            "                   ^\nSyntaxError: '(' was never closed",
        ),
        LogEvent(BASE + 41, 4101, "boom.py: failed to import", "error"),
        DroppedEvents(BASE + 50, 4102, 3),
    ]
    for i, status in enumerate(STATUSES):
        method = "POST" if i % 6 == 5 else "GET"
        events.append(
            RequestEvent(
                time=BASE + 30 + i * 2.5,
                worker_pid=4101 + i % 2,
                client="127.0.0.1:5" + f"{i:04d}",
                method=method,
                target=TARGETS[i % len(TARGETS)],
                http_version="HTTP/1.1",
                status=status,
                bytes_sent=512 * (i + 1),
                duration_ms=0.5 + (i * 7 % 40),
                request_headers=(("Host", "127.0.0.1:8899"), ("User-Agent", "curl/8.5"), ("Accept", "*/*")),
                response_headers=(("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(512 * (i + 1)))),
                body_preview=b'{"name": "widget"}' if method == "POST" else b"",
                traceback=(
                    'Traceback (most recent call last):\n  File "dynamic/boom.py", line 7, in application\n'
                    "    return 1 / 0\nZeroDivisionError: division by zero"
                    if status == 500
                    else None
                ),
            )
        )
    events.append(WorkerStatus(NOW, 4101, requests=10, connections=1, rss_bytes=31_457_280))
    events.append(WorkerStatus(NOW, 4102, requests=10, connections=0, rss_bytes=29_884_416))
    return events


def make_app() -> DashboardApp:
    return DashboardApp(Config(workers=2), started=BASE, clock=lambda: NOW, drain_interval=0.0)


async def fed(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    app.feed(traffic())
    await pilot.pause()


def test_main_screen(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=fed)


def test_detail_screen_of_a_failed_request(snap_compare: Any) -> None:
    async def open_last(pilot: Pilot[Any]) -> None:
        await fed(pilot)
        await pilot.press("enter")  # the cursor follows the tail: the last request, a 500
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_last)


def test_paused_and_filtered(snap_compare: Any) -> None:
    async def pause_and_filter(pilot: Pilot[Any]) -> None:
        await fed(pilot)
        await pilot.press("slash", "5", "x", "x", "enter", "p")
        app = pilot.app
        assert isinstance(app, DashboardApp)
        app.feed(traffic()[-5:])
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=pause_and_filter)


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, press=["question_mark"])


def test_main_screen_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=fed)


@pytest.fixture
def body_store(tmp_path: Path) -> Iterator[BodyStore]:
    store = BodyStore(str(tmp_path), total=1 << 20)
    yield store
    store.close()


def record(store: BodyStore, data: bytes) -> BodyRecord | None:
    recorder = BodyRecorder(1 << 20)
    recorder.feed(data)
    record = recorder.record(store)
    store.flush()  # as a worker does before sending the event
    return record


def json_exchange(store: BodyStore, i: int, answer: dict[str, Any], status: int = 200) -> RequestEvent:
    sent = {"name": "widget", "tags": ["blue", "small"], "price": 9.5}
    reply = json.dumps(answer).encode()
    return RequestEvent(
        time=BASE + 60 + i, worker_pid=4101, client=f"127.0.0.1:6000{i}", method="POST", target="/api/items",
        http_version="1.1", status=status, bytes_sent=120 + len(reply), duration_ms=3.5,
        request_headers=(("Host", "127.0.0.1:8899"), ("Content-Type", "application/json")),
        response_headers=(("Content-Type", "application/json"), ("Content-Length", str(len(reply)))),
        request_body=record(store, json.dumps(sent).encode()), response_body=record(store, reply),
    )


def test_detail_screen_with_a_json_body(snap_compare: Any, body_store: BodyStore) -> None:
    async def open_json(pilot: Pilot[Any]) -> None:
        pilot.app.feed([json_exchange(body_store, 0, {"id": 7, "name": "widget", "created": True})])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_json)


def test_detail_screen_diff_after_replay(snap_compare: Any, body_store: BodyStore) -> None:
    async def open_replay(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        original = json_exchange(body_store, 0, {"id": 7, "name": "widget", "price": 9.5})
        replay = json_exchange(body_store, 1, {"error": "price must be an integer"}, status=400)
        app.main.replays.expect(replay.client, original=original)
        app.feed([original, replay])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_replay)


def test_detail_screen_of_an_error_with_frames_and_locals(snap_compare: Any) -> None:
    report = ErrorReport(
        exception="KeyError: 'missing'",
        frames=(
            Frame("/site/dynamic/shop.py", 9, "application",
                  ((7, "    items = list(range(1000))"), (8, "    name = environ.get('QUERY_STRING', '')"),
                   (9, "    return lookup(items, name)"), (10, "")),
                  (("password", "********"), ("items", "[0, 1, 2, 3, 4, 5, 6, 7, ...]"), ("name", "'missing'"))),
            Frame("/site/dynamic/shop.py", 14, "lookup",
                  ((12, "def lookup(items, name):"), (13, "    count = len(items)"),
                   (14, "    return {'known': count}[name]")),
                  (("items", "[0, 1, 2, 3, 4, 5, 6, 7, ...]"), ("name", "'missing'"), ("count", "1000"))),
        ),
        folded=3, method="GET", target="/shop.py?missing",
    )
    failed = RequestEvent(time=BASE + 60, worker_pid=4101, client="127.0.0.1:50000", method="GET",
                          target="/shop.py?missing", http_version="1.1", status=500, bytes_sent=4000, duration_ms=8.0,
                          traceback="Traceback …", error_report=report)

    async def open_failed(pilot: Pilot[Any]) -> None:
        pilot.app.feed([failed])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_failed)


def test_detail_screen_timeline_at_80x24(snap_compare: Any) -> None:
    """Where the time went, the N+1 flag, the queries with their source, and the profile's call tree."""
    from devserver.ipc.events import InsideRecord, ProfileNode, ProfileRecord, QueryRecord, RepeatedQuery

    queries = tuple(QueryRecord(f"SELECT * FROM product WHERE category_id = {i}", 0.5, 2.0 + i, rows=3,
                                source="catalog/views.py:40", database="django:default") for i in range(12))
    profile = ProfileRecord("GET /catalog", 1.0, 40, (
        ProfileNode(0, "handler", "django/core/handlers/base.py:181", 40.0, 0.5, app=False),
        ProfileNode(1, "product_list", "catalog/views.py:36", 39.0, 1.0),
    ))
    inside = InsideRecord(app_ms=30.0, queries=queries, profile=profile,
                          repeated=(RepeatedQuery("SELECT * FROM product WHERE category_id = ?", 12, 6.0,
                                                  "catalog/views.py:40"),))
    profiled = RequestEvent(time=BASE + 60, worker_pid=4101, client="127.0.0.1:50000", method="GET",
                            target="/catalog", http_version="1.1", status=200, bytes_sent=4000, duration_ms=32.0,
                            inside=inside)

    async def open_timeline(pilot: Pilot[Any]) -> None:
        pilot.app.feed([profiled])
        await pilot.pause()
        await pilot.press("enter")  # a profiled request opens on its Timeline tab, on the call tree
        await pilot.pause()
        await pilot.press("home")

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=open_timeline)
