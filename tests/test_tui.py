"""Pilot tests for the dashboard (tui/): every binding, the feed, the bounds."""

from __future__ import annotations

import http.server
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import until
from textual.geometry import Region

from devserver.ipc.config import Config
from devserver.ipc.control import Evaluated
from devserver.ipc.events import (
    DroppedEvents,
    LogEvent,
    ReloadEvent,
    RequestEvent,
    ServerEvent,
    WorkerEvent,
    WorkerStatus,
)
from tui.app import DashboardApp
from tui.control import Control
from tui.feed import EventBuffer, EventsArrived
from tui.recorded.filter import parse_filter
from tui.recorded.replay import replay_headers, server_address
from tui.screens.detail import DetailScreen, body_text
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.widgets.filter_bar import FilterBar
from tui.widgets.reloads import ReloadsPanel
from tui.widgets.request_log import RequestLog, layout_columns
from tui.widgets.server_log import ServerLog
from tui.widgets.stats import RequestStats, StatsPanel, percentile
from tui.widgets.workers import WorkerBoard, WorkersPanel

BASE = 1_700_000_000.0

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def request(
    i: int = 0,
    status: int = 200,
    method: str = "GET",
    target: str | None = None,
    **fields: Any,
) -> RequestEvent:
    values: dict[str, Any] = dict(
        time=BASE + i * 0.01,
        worker_pid=4000 + i % 2,
        client="127.0.0.1:50000",
        method=method,
        target=target if target is not None else f"/page/{i}",
        http_version="HTTP/1.1",
        status=status,
        bytes_sent=100 + i,
        duration_ms=1.0 + i % 7,
    )
    values.update(fields)
    return RequestEvent(**values)


class FakeControl:
    """Records calls; satisfies tui.control.Control."""

    def __init__(self) -> None:
        self.reloads = 0
        self.stops = 0

    def reload_all(self) -> None:
        self.reloads += 1

    def stop(self) -> None:
        self.stops += 1

    def evaluate(self, worker_pid: int, request_id: str, frame: int, source: str) -> Evaluated:
        return Evaluated(0, error="no worker here")

    def arm_profile(self, route: str | None) -> None:
        self.armed = route


def make_app(control: Control | None = None, **config: Any) -> DashboardApp:
    return DashboardApp(Config(**config), control, started=BASE, clock=lambda: BASE + 83, drain_interval=0.0)


def main_log(app: DashboardApp) -> RequestLog:
    return app.main.request_log


def screen_text(widget: Any) -> str:
    """What ``widget`` shows, as plain text lines."""
    region = Region(0, 0, widget.size.width, widget.size.height)
    return "\n".join("".join(seg.text for seg in strip) for strip in widget.render_lines(region))


def segment_style(log: RequestLog, y: int, text: str) -> Any:
    """The style of the first segment of rendered line ``y`` containing ``text``."""
    for segment in log.render_line(y):
        if text in segment.text:
            return segment.style
    raise AssertionError(f"{text!r} not on line {y}")


# ---------------------------------------------------------------- feeding


async def test_rows_appear_coloured_by_status_class() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        app.feed([request(0, 200), request(1, 301), request(2, 404), request(3, 500)])
        await pilot.pause()
        log = main_log(app)
        assert [r.status for r in log.rows] == [200, 301, 404, 500]
        colours = {}
        for y, status in enumerate([200, 301, 404, 500], start=1):
            colours[status] = segment_style(log, y, str(status)).color.triplet
        red, green, blue = colours[500]
        assert red > 200 and green < 120  # 5xx red
        assert colours[200].green > colours[200].red  # 2xx green
        assert colours[301].blue > 180 and colours[301].green > 180  # 3xx cyan
        assert colours[404].red > 200 and colours[404].green > 150 and colours[404].blue < 150  # 4xx yellow
        assert len(set(colours.values())) == 4
        assert "TARGET" in "".join(s.text for s in log.render_line(0))
        assert log.selected == log.rows[-1]  # follows the tail


async def test_feed_from_background_thread_loses_nothing_and_coalesces() -> None:
    app = DashboardApp(Config(), started=BASE, clock=lambda: BASE, drain_interval=0.1)
    async with app.run_test() as pilot:
        await pilot.pause()

        def produce() -> None:
            for batch in range(500):
                app.feed([request(batch * 10 + k) for k in range(10)])

        thread = threading.Thread(target=produce)
        thread.start()
        thread.join()
        await until(pilot, lambda: main_log(app).total_count == 5000)
        assert [r.target for r in main_log(app).rows[:2]] == ["/page/0", "/page/1"]
        assert app.drain_count <= 10  # 500 feeds, a handful of redraws
        assert app.main.query_one(StatsPanel).stats.total == 5000


async def test_events_fed_before_start_are_shown_and_after_exit_dropped() -> None:
    app = make_app()
    app.feed([ServerEvent(BASE, "listening", url="http://127.0.0.1:8899/", workers=2), request(0)])
    async with app.run_test() as pilot:
        await until(pilot, lambda: main_log(app).total_count == 1)
    app.feed([request(1)])  # e.g. the supervisor's "stopping" events
    assert len(app._buffer) == 0


def test_events_arrived_coalesces() -> None:
    assert EventsArrived().can_replace(EventsArrived())


def test_event_buffer_is_bounded_and_counts_overflow() -> None:
    buffer = EventBuffer(limit=5)
    buffer.put([request(i) for i in range(8)])
    events, overflow = buffer.take()
    assert [e.target for e in events] == [f"/page/{i}" for i in range(3, 8)]
    assert overflow == 3
    assert buffer.take() == ([], 0)


async def test_log_keeps_at_most_log_rows() -> None:
    app = make_app(log_rows=100)
    async with app.run_test() as pilot:
        app.feed([request(i) for i in range(2500)])  # one huge batch
        for start in range(2500, 5000, 250):  # and many smaller ones
            app.feed([request(i) for i in range(start, start + 250)])
        await pilot.pause()
        log = main_log(app)
        assert log.total_count == log.row_count == 100
        assert log.rows[0].target == "/page/4900" and log.rows[-1].target == "/page/4999"
        log.paused = True
        app.feed([request(i) for i in range(5000, 5300)])
        await pilot.pause()
        assert log.held_count == 300 and len(log._held) == 100  # held rows are bounded too
        log.paused = False
        await pilot.pause()
        assert log.total_count == 100 and log.rows[-1].target == "/page/5299"


async def test_side_panels_show_workers_reloads_drops_and_messages() -> None:
    app = make_app(workers=2)
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed(
            [
                WorkerEvent(BASE, 11, "started", index=0),
                WorkerEvent(BASE, 12, "started", index=1),
                WorkerStatus(BASE + 1, 11, requests=7, connections=2, rss_bytes=30 * 1024 * 1024),
                WorkerEvent(BASE + 2, 12, "exited", index=1, exitcode=-9),
                WorkerEvent(BASE + 3, 13, "restarted", index=1),
                ReloadEvent(BASE + 4, ("dynamic/app.py",), ("app",), 2.5),
                ReloadEvent(BASE + 5, ("dynamic/app.py",), (), 1.0, error="Traceback …\nSyntaxError: invalid syntax"),
                DroppedEvents(BASE + 6, 11, 42),
                LogEvent(BASE + 7, 11, "hello from wsgi.errors", "warning"),
                ServerEvent(BASE + 8, "listening", url="http://127.0.0.1:8899/"),
                request(1, 503, worker_pid=13),
            ]
        )
        await pilot.pause()
        workers = app.main.query_one(WorkersPanel)
        assert workers.row_count == 2
        assert workers.get_row("0")[1:4] == ["11", "running", "7"]
        assert workers.get_row("0")[6] == "30.0 MB"
        assert workers.get_row("1")[1:6] == ["13", "running", "1", "0", "1"]  # restarted once, 1 request seen
        assert "workers 2/2" in str(app.main.query_one("#header-info").content)
        assert "up 1m" in str(app.main.query_one("#header-info").content)
        reloads = app.main.query_one(ReloadsPanel)
        assert "FAILED SyntaxError" in str(reloads.query_one("#reload-list").content)
        error = reloads.query_one("#reload-error")
        assert error.has_class("-failed") and "SyntaxError" in str(error.content)
        assert "dropped events 42" in str(app.main.query_one("#dropped").content)
        assert "5xx 1" in str(app.main.query_one("#status-counts").content)
        server_log = app.main.query_one(ServerLog)
        text = "\n".join(strip.text for strip in server_log.lines)
        assert "hello from wsgi.errors" in text and "server listening" in text


# ----------------------------------------------------------------- bindings


async def test_enter_opens_detail_screen_with_headers_and_traceback() -> None:
    app = make_app()
    failing = request(
        1,
        500,
        "POST",
        "/boom?x=[1]&y=two",
        request_headers=(("Host", "localhost"), ("X-Test", "yes"), ("Content-Type", "application/x-www-form-urlencoded"),
                         ("Content-Length", "10")),
        response_headers=(("Content-Type", "text/html"),),
        body_preview=b"name=value",
        traceback="Traceback (most recent call last):\nZeroDivisionError: division by zero",
    )
    async with app.run_test(size=(100, 40)) as pilot:
        app.feed([request(0), failing])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.request is failing
        assert "X-Test: yes" in str(screen.query_one("#request-headers").content)
        assert "Content-Type: text/html" in str(screen.query_one("#response-headers").content)
        assert "ZeroDivisionError" in str(screen.query_one("#traceback").content)
        assert "name = value" in str(screen.query_one("#request-body").content)  # a form, shown as fields
        assert str(screen.query_one("#request-line").content) == "POST /boom?x=[1]&y=two HTTP/1.1"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main


async def test_click_on_selected_row_opens_details() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.feed([request(0), request(1)])
        await pilot.pause()
        # row 0 is on the log's second content line (after the header and top border)
        await pilot.click(RequestLog, offset=(10, 2))
        await pilot.pause()
        assert main_log(app).selected is main_log(app).rows[0] and not main_log(app).follow
        await pilot.click(RequestLog, offset=(10, 2))
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen) and app.screen.request is main_log(app).rows[0]


async def test_slash_filters_and_escape_clears(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url))
    app = make_app()
    async with app.run_test() as pilot:
        app.feed([request(0, 200), request(1, 500), request(2, 404, "POST"), request(3, 502, "POST")])
        await pilot.pause()
        log = main_log(app)
        await pilot.press("slash")
        bar = app.main.query_one(FilterBar)
        assert bar.has_focus and bar.display
        await pilot.press("5", "x", "x")
        await pilot.pause()
        assert [r.status for r in log.rows] == [500, 502]
        assert "filter: 5xx" in str(log.border_title)
        app.feed([request(4, 200), request(5, 503)])  # new rows respect the filter
        await pilot.pause()
        assert [r.status for r in log.rows] == [500, 502, 503]
        await pilot.press("space", "P", "O", "S", "T")  # letters are text, not bindings
        await pilot.pause()
        assert [(r.method, r.status) for r in log.rows] == [("POST", 502)]
        assert not log.paused and not opened
        await pilot.press("enter")  # keep the filter, back to the log
        await pilot.pause()
        assert log.has_focus and bar.display and log.row_count == 1
        await pilot.press("slash", "escape")
        await pilot.pause()
        assert log.row_count == 6 and not bar.display and log.has_focus and bar.value == ""


async def test_bad_filter_is_shown_inline_and_keeps_the_last_good_one() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        app.feed([request(0, 200), request(1, 500, "POST"), request(2, 404, target="/post/404")])
        await pilot.pause()
        log = main_log(app)
        await pilot.press("slash", *"~s 5xx")
        await pilot.pause()
        assert [r.status for r in log.rows] == [500]
        bar = app.main.query_one(FilterBar)
        await pilot.press(*" & (")  # unfinished: the error shows, the 5xx filter stays
        await pilot.pause()
        assert bar.error is not None and bar.has_class("-invalid")
        assert "ends too soon" in str(bar.border_subtitle)
        assert [r.status for r in log.rows] == [500]
        await pilot.press("enter")  # Enter on an error keeps the bar open and focused
        await pilot.pause()
        assert bar.has_focus and bar.display
        await pilot.press(*["backspace"] * len(bar.value))
        await pilot.press(*'"post"')  # quoted: text, so the 404 whose path says "post" shows too
        await pilot.pause()
        assert bar.error is None and not bar.has_class("-invalid") and str(bar.border_subtitle) == ""
        assert [r.status for r in log.rows] == [500, 404]
        await pilot.press("enter")
        await pilot.pause()
        assert log.has_focus


async def test_p_pauses_and_shows_held_count() -> None:
    app = make_app()
    async with app.run_test() as pilot:
        app.feed([request(0)])
        await pilot.pause()
        log = main_log(app)
        await pilot.press("p")
        app.feed([request(1), request(2)])
        app.feed([request(3)])
        await pilot.pause()
        assert log.paused and log.row_count == 1 and log.held_count == 3
        assert "PAUSED · 3 new" in str(log.border_subtitle)
        assert app.main.query_one(StatsPanel).stats.total == 4  # traffic stats keep counting
        await pilot.press("p")
        await pilot.pause()
        assert not log.paused and log.held_count == 0
        assert [r.target for r in log.rows] == ["/page/0", "/page/1", "/page/2", "/page/3"]
        assert "PAUSED" not in str(log.border_subtitle)


async def test_c_clears_the_log() -> None:
    app = make_app()
    async with app.run_test() as pilot:
        app.feed([request(i) for i in range(10)])
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        log = main_log(app)
        assert log.row_count == log.total_count == 0 and log.selected is None
        app.feed([request(11)])
        await pilot.pause()
        assert log.row_count == 1 and log.follow


async def test_cursor_up_stops_following_and_end_resumes() -> None:
    app = make_app(log_rows=50)
    async with app.run_test(size=(100, 20)) as pilot:
        app.feed([request(i) for i in range(40)])
        await pilot.pause()
        log = main_log(app)
        assert log.follow and log.selected.target == "/page/39"
        await pilot.press("up", "up")
        assert not log.follow and log.selected.target == "/page/37"
        top = log.scroll_offset.y
        app.feed([request(i) for i in range(40, 60)])  # ten oldest rows drop out
        await pilot.pause()
        assert log.selected.target == "/page/37" and log.scroll_offset.y == top - 10
        await pilot.press("end")
        assert log.follow and log.selected.target == "/page/59"
        assert log.scroll_offset.y == log.max_scroll_y
        await pilot.press("home")
        assert not log.follow and log.selected.target == "/page/10" and log.scroll_offset.y == 0
        await pilot.press("pagedown")
        assert log.cursor > 0


class Recorder(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, str], bytes]] = []

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, dict(self.headers.items()), body))
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = _any

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[tuple[str, str, dict[str, str], bytes]]]]:
    received: list[tuple[str, str, dict[str, str], bytes]] = []
    handler = type("Handler", (Recorder,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


async def test_r_replays_selected_request(recorder: tuple[int, list[Any]]) -> None:
    port, received = recorder
    app = make_app(host="127.0.0.1", port=0)  # the server picks the port and says so
    notes: list[str] = []
    original = app.notify
    app.notify = lambda message, *a, **k: (notes.append(message), original(message, *a, **k))[1]  # type: ignore[method-assign]
    recorded = request(
        1,
        200,
        "POST",
        "/submit?x=1",
        request_headers=(
            ("Host", "example.test"),
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "hop"),
            ("Keep-Alive", "timeout=5"),
            ("Content-Length", "7"),
            ("X-Token", "abc"),
        ),
        body_preview=b"a=1&b=2",
    )
    async with app.run_test() as pilot:
        app.feed([ServerEvent(BASE, "listening", url=f"http://127.0.0.1:{port}/"), request(0), recorded])
        await pilot.pause()
        assert app.main.query_one("#site-url").url == f"http://127.0.0.1:{port}/"
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: any("201" in n for n in notes))
        method, path, headers, body = received[0]
        assert (method, path, body) == ("POST", "/submit?x=1", b"a=1&b=2")
        assert headers["Host"] == "example.test" and headers["X-Token"] == "abc"
        assert headers["Content-Length"] == "7"
        assert "X-Secret" not in headers and "Keep-Alive" not in headers and "Accept-Encoding" not in headers
        assert any("POST /submit?x=1 → 201 Created" in n for n in notes)
        # From the detail screen, r replays the request shown.
        await pilot.press("up", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: len(received) == 2)
        assert received[1][:2] == ("GET", "/page/0")


async def test_r_reports_unreachable_server() -> None:
    app = make_app(host="127.0.0.1", port=1)  # nothing listens on port 1
    notes: list[tuple[str, str]] = []
    app.notify = lambda message, *a, severity="information", **k: notes.append((message, severity))  # type: ignore[method-assign]
    async with app.run_test() as pilot:
        app.feed([request(0)])
        await pilot.pause()
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: any(s == "error" for _, s in notes))
        assert app.is_running


async def test_shift_r_reloads_all_modules() -> None:
    control = FakeControl()
    app = make_app(control)
    async with app.run_test() as pilot:
        await pilot.press("R")
        await app.workers.wait_for_complete()
        assert control.reloads == 1 and control.stops == 0


async def test_shift_r_without_server_warns() -> None:
    app = make_app()
    notes: list[str] = []
    app.notify = lambda message, *a, **k: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test() as pilot:
        await pilot.press("R")
        assert notes == ["No server attached."]


async def test_q_stops_the_server_and_exits() -> None:
    control = FakeControl()
    app = make_app(control)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert control.stops == 1
    assert app.return_code == 0 and not app.is_running


async def test_q_without_server_exits() -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_question_mark_shows_help() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = [b.action for b in app.screen.bindings]
        for action in ("select", "filter", "pause", "clear", "replay", "reload", "open_site", "help", "quit"):
            assert action in keys
        syntax = screen_text(app.screen.query_one("#help-filter"))
        for operator in ("~m", "~s", "~c", "~u", "~h", "~b", "~d", "~w", "! & | ( )"):
            assert operator in syntax
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main


async def test_command_palette_offers_every_action() -> None:
    app = make_app(FakeControl())
    async with app.run_test() as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Filter (/)", "Pause (p)", "Clear (c)", "Replay (r)", "Reload (R)", "Open (o)", "Help (?)"):
            assert title in titles
        pause = next(c for c in app.get_system_commands(app.screen) if c.title == "Pause (p)")
        await pause.callback()
        assert main_log(app).paused
        await pilot.pause()


# ------------------------------------------------------------------- models


def test_parse_filter_combines_terms() -> None:
    flt = parse_filter('5xx post "api/v1"')
    assert flt.matches(request(status=503, method="POST", target="/api/v1/x"))
    assert flt.matches(request(status=500, method="POST", target="/API/V1"))
    assert not flt.matches(request(status=503, method="GET", target="/api/v1/x"))
    assert not flt.matches(request(status=200, method="POST", target="/api/v1/x"))
    assert not flt.matches(request(status=500, method="POST", target="/other"))
    assert parse_filter("  ").is_empty
    assert parse_filter("4xx | 5xx").matches(request(status=404))
    assert parse_filter("127.0.0.1").matches(request())  # client address


def test_request_stats_are_bounded() -> None:
    stats = RequestStats(history=60, window=100)
    stats.add([request(i, duration_ms=float(i)) for i in range(1000)], now=BASE + 10)
    assert stats.latency_samples == 100
    assert stats.latency_percentiles() == (949.0, 994.0, 998.0)
    history = stats.rate_history(BASE + 10)
    assert len(history) == 60 and sum(history) == 1000
    stats.add([replace(request(0), time=BASE + 500)], now=BASE + 500)
    assert stats.rate_history(BASE + 500)[-1] == 1 and len(stats._per_second) == 1
    assert percentile([], 50) == 0.0 and percentile([3.0], 99) == 3.0


def test_worker_board_tracks_restarts_by_slot() -> None:
    board = WorkerBoard()
    board.apply([WorkerEvent(BASE, 1, "started", 0), WorkerStatus(BASE, 1, 5, 1, 1000)])
    board.count_requests([request(worker_pid=1)])
    assert board.slots[0].served == 5
    board.apply([WorkerEvent(BASE, 1, "exited", 0, exitcode=1)])
    assert board.alive == 0
    board.apply([WorkerEvent(BASE, 2, "restarted", 0)])
    assert board.alive == 1 and board.slots[0].restarts == 1 and board.slots[0].pid == 2
    board.apply([WorkerStatus(BASE, 99, 4, 0, 0)])  # unknown pid: a placeholder row
    assert sorted(board.slots) == [-99, 0] and board.alive == 2
    board.apply([WorkerEvent(BASE, 99, "started", 1)])  # ... until it is announced
    assert sorted(board.slots) == [0, 1] and board.slots[1].pid == 99 and board.slots[1].requests == 4
    assert board.slots[1].restarts == 0


def test_replay_drops_hop_by_hop_headers() -> None:
    event = request(
        request_headers=(("Connection", "close, X-A"), ("X-A", "1"), ("TE", "trailers"), ("Accept", "*/*"))
    )
    assert replay_headers(event) == [("Accept", "*/*")]


def test_server_address_is_connectable() -> None:
    assert server_address("http://127.0.0.1:8899/") == ("127.0.0.1", 8899)
    assert server_address("http://0.0.0.0:80/") == ("127.0.0.1", 80)
    assert server_address("http://[::]:8000/") == ("::1", 8000)
    assert server_address("http://[::1]:8000/") == ("::1", 8000)


def test_narrow_log_drops_columns_but_keeps_target() -> None:
    wide = [c.label for c, _ in layout_columns(120)]
    assert wide == ["TIME", "METHOD", "TARGET", "ST", "DURATION", "SIZE", "PID"]
    assert [c.label for c, _ in layout_columns(40)] == ["METHOD", "TARGET", "ST", "DURATION"]
    narrow = layout_columns(30)
    assert [c.label for c, _ in narrow] == ["METHOD", "TARGET", "ST"]
    assert sum(w for _, w in narrow) + len(narrow) - 1 == 30


def test_body_preview_text_or_hex() -> None:
    assert body_text(b"") == "—"
    assert body_text(b"a=1") == "a=1"
    assert body_text(b"\x00\x01ab").startswith("000000  00 01 61 62")


# ---------------------------------------------------------------- run_dashboard


class FakeStartError(Exception):
    pass


def fake_supervisor_module(fail: bool, calls: list[str]) -> types.ModuleType:
    module = types.ModuleType("devserver.supervisor.core")

    class Supervisor:
        def __init__(self, config: Config, sink: Any) -> None:
            calls.append("init")
            self.sink = sink
            self.config = config
            self.watchers: list[Any] = []

        def start(self) -> None:
            calls.append("start")
            if fail:
                raise FakeStartError("port 8899 is already in use")
            self.sink([ServerEvent(BASE, "listening")])

        def stop(self) -> None:
            calls.append("stop")

        def reload_all(self) -> None:
            calls.append("reload")

        def evaluate(self, worker_pid: int, request_id: str, frame: int, source: str) -> Evaluated:
            return Evaluated(0)

        def arm_profile(self, route: str | None) -> None:
            calls.append("arm")

    module.Supervisor = Supervisor  # type: ignore[attr-defined]
    module.StartError = FakeStartError  # type: ignore[attr-defined]
    return module


def test_run_dashboard_reports_start_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tui.run import run_dashboard

    calls: list[str] = []
    monkeypatch.setitem(sys.modules, "devserver.supervisor.core", fake_supervisor_module(True, calls))
    assert run_dashboard(Config()) == 1
    assert capsys.readouterr().err.strip() == "devserver: error: port 8899 is already in use"
    assert calls == ["init", "start"]  # nothing started, nothing to stop


def test_run_dashboard_runs_app_then_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.run import run_dashboard

    calls: list[str] = []
    seen: list[Any] = []
    monkeypatch.setitem(sys.modules, "devserver.supervisor.core", fake_supervisor_module(False, calls))

    def fake_run(self: DashboardApp) -> None:
        seen.append((self.control, len(self._buffer)))
        calls.append("run")

    monkeypatch.setattr(DashboardApp, "run", fake_run)
    assert run_dashboard(Config()) == 0
    assert calls == ["init", "start", "run", "stop"]
    control, buffered = seen[0]
    assert isinstance(control, Control) and buffered == 1  # the sink is app.feed


def test_main_screen_is_the_default_screen() -> None:
    app = make_app()
    assert isinstance(app.get_default_screen(), MainScreen)
