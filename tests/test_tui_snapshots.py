"""SVG snapshots of the dashboard (pytest-textual-snapshot).

Time is frozen: the app's clock is injected, events carry fixed timestamps
and local time is UTC, so the pictures do not depend on when or where the
tests run.  Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the SVGs in ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from devserver.config import Config
from devserver.events import (
    DroppedEvents,
    Event,
    LogEvent,
    ReloadEvent,
    RequestEvent,
    ServerEvent,
    WorkerEvent,
    WorkerStatus,
)
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
