"""The order of the logs: lines and rows in the order of the times they show.

Workers send their events in batches on their own clocks (every 50 ms, or
256 events), so what reaches the supervisor is in order per worker, not
across workers, and a worker's last batch may still be on its way when the
server stops.  The console log prints a request that finished before Ctrl-C
before the ``devserver stopping`` line; the dashboard's request log keeps its
rows sorted by the time each shows, a late batch going in place (within a
bounded window) while the view still follows the tail.
"""

from __future__ import annotations

import http.client
import signal
import socket
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveServer, until, wait_until

from devserver.ipc.config import Config
from devserver.ipc.events import Event, RequestEvent, ServerEvent
from devserver.supervisor.core import Supervisor
from tui.app import DashboardApp
from tui.widgets.request_log import RequestLog, insert_in_time_order

BASE = 1_700_000_000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ------------------------------------------------------------------ console


def _get_each_on_a_new_connection(server: LiveServer, count: int) -> None:
    """``count`` GETs, each on its own connection (so both workers take some); every answer read in full."""
    for n in range(count):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(f"GET /index.html?n={n} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_requests_answered_before_the_stop_are_logged_before_the_stopping_line(site: Any, sig: int) -> None:
    """The last batches of both workers were still in them (their flush is 50 ms away) when the signal came."""
    server = LiveServer(["--workers", "2"], site).start()
    try:
        _get_each_on_a_new_connection(server, 30)
        assert server.stop(sig) == 0
    finally:
        server.stop(signal.SIGKILL)
    lines = server.lines
    stopping = next(i for i, line in enumerate(lines) if line.endswith("devserver stopping"))
    logged = [i for i, line in enumerate(lines) if "GET /index.html?n=" in line]
    assert len(logged) == 30, "\n".join(lines)
    assert max(logged) < stopping, "\n".join(lines)


class AnsweredWhileStarting:
    """A watcher whose start (before "listening") has a request answered and its event sent up a pipe."""

    def start(self, supervisor: Supervisor) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", supervisor.sock.getsockname()[1], timeout=10)  # type: ignore[union-attr]
        conn.request("GET", "/index.html?early")
        assert conn.getresponse().read()
        conn.close()
        # the worker's flush (50 ms) sends it
        wait_until(lambda: any(slot.events.poll() for slot in supervisor.slots), 10, "the request's event leaving its worker")

    def stop(self) -> None:
        pass


def test_listening_is_logged_before_any_request(site: Path) -> None:
    delivered: list[Event] = []
    config = Config(host="127.0.0.1", port=0, root=str(site / "html_page"), dynamic=str(site / "dynamic"),
                    workers=1, reload=False, livereload=False).resolved()
    supervisor = Supervisor(config, sink=delivered.extend)
    supervisor.watchers.append(AnsweredWhileStarting())
    supervisor.start()
    try:
        wait_until(lambda: any(isinstance(e, RequestEvent) for e in delivered), 10, "the request's event delivered")
    finally:
        supervisor.stop()
    kinds = [e.state if isinstance(e, ServerEvent) else type(e).__name__ for e in delivered]
    assert kinds.index("listening") < kinds.index("RequestEvent") < kinds.index("stopping")


# ---------------------------------------------------------------- dashboard


def row(at: float, pid: int = 4001, target: str = "") -> RequestEvent:
    return RequestEvent(BASE + at, pid, "127.0.0.1:50000", "GET", target or f"/t{at:.3f}", "HTTP/1.1", 200, 10, 1.0)


def offsets(rows: list[RequestEvent]) -> list[float]:
    return [round(r.time - BASE, 3) for r in rows]


def make_app(**config: Any) -> DashboardApp:
    return DashboardApp(Config(**config), None, started=BASE, clock=lambda: BASE + 83, drain_interval=0.0)


def shown_times(log: RequestLog) -> list[str]:
    """The TIME column of the rows on screen, top to bottom."""
    texts = ["".join(segment.text for segment in log.render_line(y)) for y in range(1, log.size.height)]
    return [text.split()[0] for text in texts if text.strip()]


@pytest.mark.anyio
async def test_a_late_batch_from_another_worker_is_shown_in_time_order_and_the_tail_still_followed() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        log = app.main.request_log
        app.feed([row(0.100, 4001), row(0.200, 4001), row(0.215, 4001)])
        await until(pilot, lambda: log.total_count == 3)
        app.feed([row(0.150, 4002), row(0.205, 4002)])  # worker 4002's batch, flushed later
        await until(pilot, lambda: log.total_count == 5)
        assert offsets(log.rows) == [0.1, 0.15, 0.2, 0.205, 0.215]
        assert log.follow and log.selected is not None and offsets([log.selected]) == [0.215]
        assert [t[-3:] for t in shown_times(log)] == ["100", "150", "200", "205", "215"]
        app.feed([row(0.220 + i / 1000, 4001) for i in range(40)])  # more than a screen: the view scrolls on
        await until(pilot, lambda: log.total_count == 45)
        app.feed([row(0.230, 4002)])
        await until(pilot, lambda: log.total_count == 46)
        assert offsets(log.rows) == sorted(offsets(log.rows))
        assert log.follow and log.scroll_offset.y == log.max_scroll_y and log.selected is log.rows[-1]


@pytest.mark.anyio
async def test_a_late_row_inserted_above_the_cursor_keeps_the_selected_request_in_place() -> None:
    app = make_app()
    async with app.run_test(size=(120, 20)) as pilot:
        log = app.main.request_log
        app.feed([row(i / 100) for i in range(40)])
        await until(pilot, lambda: log.total_count == 40)
        await pilot.press("up", "up", "up")
        chosen = log.selected
        assert chosen is not None and not log.follow
        line = log.cursor - log.scroll_offset.y
        app.feed([row(0.355, 4002, "/late")])  # lands two rows above the cursor's 0.37
        await until(pilot, lambda: log.total_count == 41)
        assert log.selected is chosen and log.cursor - log.scroll_offset.y == line
        assert [r.target for r in log.rows][35:38] == ["/t0.350", "/late", "/t0.360"]


@pytest.mark.anyio
async def test_filtered_and_paused_views_stay_in_time_order() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        log = app.main.request_log
        await pilot.press("slash", *"~w 4002", "enter")
        app.feed([row(0.1, 4002), row(0.3, 4002), row(0.4, 4001)])
        await until(pilot, lambda: log.total_count == 3)
        app.feed([row(0.2, 4002)])
        await until(pilot, lambda: log.total_count == 4)
        assert offsets(log.rows) == [0.1, 0.2, 0.3]
        await pilot.press("slash", "escape")  # the filter cleared
        await until(pilot, lambda: log.row_count == 4)
        assert offsets(log.rows) == [0.1, 0.2, 0.3, 0.4]
        await pilot.press("p")
        app.feed([row(0.6, 4001)])
        app.feed([row(0.5, 4002), row(0.35, 4002)])
        await until(pilot, lambda: log.held_count == 3)
        await pilot.press("p")
        await until(pilot, lambda: log.total_count == 7)
        assert offsets(log.rows) == [0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6]


def test_insertion_looks_back_a_bounded_window_and_reports_where_rows_changed() -> None:
    rows = deque(row(i / 10) for i in range(10))  # 0.0 ... 0.9
    assert insert_in_time_order(rows, [row(1.0), row(1.1)], window=3) == 10  # in order: appended, nothing moved
    assert insert_in_time_order(rows, [row(1.05)], window=3) == 11
    assert offsets(list(rows)) == [i / 10 for i in range(11)] + [1.05, 1.1]
    # 0.05 is older than the whole window (the last 3 rows): it goes at the window's start, older rows stay put
    assert insert_in_time_order(rows, [row(0.05), row(1.08)], window=3) == 10
    assert offsets(list(rows))[:10] == [i / 10 for i in range(10)]
    assert offsets(list(rows))[10:] == [0.05, 1.0, 1.05, 1.08, 1.1]
    same = deque([row(0.5, 1, "/a")])
    insert_in_time_order(same, [row(0.5, 2, "/b")], window=8)  # equal times: the earlier arrival first
    assert [r.target for r in same] == ["/a", "/b"]
