"""The detail in tabs (issue 23, item 3), profile arming from the dashboard (item 2), what the HAR export
carries of a request's inside (item 4), and the keys and the URL at 80x24 (the issue's measured problems).

The events are synthetic (the schema of devserver/ipc/events.py), fed to a DashboardApp under Pilot.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import dashboard_over, until
from test_tui import FakeControl
from test_tui_inspect import BASE, event, make_app, recorded
from textual.widgets import DataTable, Static, TabbedContent, Tree
from textual.widgets._footer import FooterKey

from devserver.debug.capture import BodyStore
from devserver.ipc.config import Config
from devserver.ipc.events import (
    InsideRecord,
    OutboundRecord,
    ProfileNode,
    ProfileRecord,
    QueryRecord,
    RepeatedQuery,
    RequestEvent,
    ServerEvent,
    TemplateRecord,
)
from tui.app import DashboardApp
from tui.recorded.export import har_entry, har_json
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.widgets.folded import FoldedText, fold
from tui.widgets.header import DashboardHeader
from tui.widgets.request_log import PROFILED_MARK
from tui.widgets.timeline import Bars, shares

pytestmark = pytest.mark.anyio
SIZES = [(80, 24), (160, 50)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BodyStore]:
    spool = tmp_path / "spool"
    spool.mkdir()
    body_store = BodyStore(str(spool), total=8 * 1024 * 1024)
    yield body_store
    body_store.close()


N_PLUS_ONE = tuple(QueryRecord(f"SELECT * FROM product WHERE category_id = {i}", 0.5, 2.0 + i, rows=3,
                               source="catalog/views.py:40", database="django:default") for i in range(12))
PROFILE = ProfileRecord("GET /catalog", 1.0, 40, (
    ProfileNode(0, "handler", "django/core/handlers/base.py:181", 40.0, 0.5, app=False),
    ProfileNode(1, "product_list", "catalog/views.py:36", 39.0, 1.0),
    ProfileNode(2, "execute", "django/db/backends/utils.py:100", 20.0, 20.0, app=False),
    ProfileNode(2, "fetch_prices", "catalog/prices.py:10", 12.5, 0.5),
))


def inside(profile: ProfileRecord | None = None) -> InsideRecord:
    return InsideRecord(
        app_ms=40.0,
        queries=(QueryRecord("SELECT id, name FROM category WHERE secret = '********'", 1.5, 1.0, rows=12,
                             source="catalog/views.py:38", database="django:default"), *N_PLUS_ONE),
        repeated=(RepeatedQuery("SELECT * FROM product WHERE category_id = ?", 12, 6.0, "catalog/views.py:40"),),
        outbound=(OutboundRecord("GET", "http://127.0.0.1:9000/prices?key=********", 200, 12.0, 20.0, 512,
                                 "http.client", "catalog/prices.py:12"),),
        templates=(TemplateRecord("catalog/list.html", 4.0, 30.0, "django", "catalog/views.py:44"),),
        profile=profile,
    )


def catalog(**fields: Any) -> RequestEvent:
    values: dict[str, Any] = dict(target="/catalog?page=2", duration_ms=45.0, inside=inside())
    values.update(fields)
    return event(**values)


def text_of(screen: DetailScreen, selector: str) -> str:
    widget = screen.query_one(selector, Static)
    return widget.text if isinstance(widget, FoldedText) else str(widget.content)


def drawn(screen: DetailScreen) -> str:
    """What the shown tab draws on the terminal now (hidden tabs draw nothing)."""
    return "\n".join("".join(s.text for s in widget.render_line(y)) for widget in screen.query("Static, DataTable, Tree")
                     if widget.region.height for y in range(widget.size.height))


def text_of_bars(screen: DetailScreen) -> list[str]:
    bars = screen.query_one("#timeline-bars", Static)
    return [strip.text for strip in bars.render_lines(bars.region.reset_offset)]


async def open_detail(pilot: Any, app: DashboardApp, request: RequestEvent) -> DetailScreen:
    app.feed([request])
    await until(pilot, lambda: app.main.request_log.row_count == 1)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, DetailScreen))
    await pilot.pause()
    assert isinstance(app.screen, DetailScreen)
    return app.screen


# -- tabs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_a_64k_binary_request_leaves_the_response_one_key_away(size: tuple[int, int], store: BodyStore) -> None:
    data = bytes(range(256)) * 256  # 64 KiB, not text: a hex dump
    big = event(method="POST", target="/upload", status=201, request_body=recorded(store, data),
                request_headers=(("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))),
                response_headers=(("Content-Type", "text/plain"), ("X-Stored-As", "blob-7")))
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_detail(pilot, app, big)
        assert screen.tab == "request"
        body = screen.query_one("#request-body", FoldedText)
        await until(pilot, lambda: body.folded_lines > 0)
        # Folded: its start, then what is left out and the key that shows it, all within the screen.
        assert "000000  00 01 02 03" in drawn(screen) and "more lines (64.0 KB in all) · b shows everything" in drawn(
            screen)
        assert body.region.bottom <= size[1] - 1
        await pilot.press("2")  # one key: the response, its status and headers on screen
        await until(pilot, lambda: screen.tab == "response")
        shown = drawn(screen)
        assert "201 Created" in shown and "X-Stored-As: blob-7" in shown and "000000" not in shown
        await pilot.press("1", "b")  # b unfolds the body, b again folds it
        await until(pilot, lambda: body.expanded and body.folded_lines == 0)
        assert body.region.height > size[1]
        await pilot.press("b")
        await until(pilot, lambda: not body.expanded and body.folded_lines > 0)


def test_fold_counts_a_long_line_as_the_lines_it_wraps_to() -> None:
    assert fold("a\nb\nc", 5) == ("a\nb\nc", 0)
    assert fold("\n".join(str(i) for i in range(10)), 4) == ("0\n1\n2\n3", 6)
    shown, left = fold("x" * 10_000 + "\nend", 3)
    assert len(shown) == 3 * 120 and left == 2


@pytest.mark.parametrize("size", SIZES)
async def test_every_tab_is_a_key_away_and_says_what_it_holds(size: tuple[int, int]) -> None:
    request = catalog(logs=("hello from the view",), request_headers=(("Host", "localhost"),),
                      response_headers=(("Content-Type", "text/html"),))
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_detail(pilot, app, request)
        expected = {"1": ("request", "Host: localhost"), "2": ("response", "200 OK"),
                    "3": ("timeline", "Where the time went"), "4": ("logs", "hello from the view"),
                    "5": ("console", "The app did not raise while serving this request")}
        for key, (tab, text) in expected.items():
            await pilot.press(key)
            await until(pilot, lambda tab=tab: screen.tab == tab)  # type: ignore[misc]
            await pilot.pause()
            assert text in drawn(screen), (tab, drawn(screen))
        labels = [str(t.label) for t in screen.query_one(TabbedContent).query("ContentTab")]
        assert labels == ["Request", "Response", "Timeline", "Logs (1)", "Console"]


async def test_a_failed_request_opens_on_its_traceback_and_keeps_the_console_key() -> None:
    failed = event(status=500, target="/boom", traceback="Traceback (most recent call last):\nKeyError: 'x'")
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_detail(pilot, app, failed)
        assert screen.tab == "console" and "KeyError: 'x'" in drawn(screen)


@pytest.mark.parametrize("size", SIZES)
async def test_the_timeline_shows_where_the_time_went_and_each_query_with_its_source(size: tuple[int, int]) -> None:
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_detail(pilot, app, catalog())
        await pilot.press("3")
        await until(pilot, lambda: screen.tab == "timeline")
        await pilot.pause()
        shown = drawn(screen)
        bars = [line.strip().split("  ")[0] for line in text_of_bars(screen)]
        assert bars == ["total", "server", "app", "SQL", "outbound", "templates", "app code"]
        assert "total           45 ms" in shown
        assert "13 queries" in shown and "1 call" in shown
        assert text_of(screen, "#timeline-repeated").startswith(
            "N+1: 12 similar queries from catalog/views.py:40 (6.0 ms): SELECT * FROM product WHERE category_id = ?")
        table = screen.query_one("#timeline-items", DataTable)
        assert table.has_focus and table.row_count == 15  # 13 queries, 1 call, 1 template, in the order they began
        assert text_of(screen, "#timeline-item").endswith("from catalog/views.py:38")
        await pilot.press("down")
        detail = text_of(screen, "#timeline-item")
        assert detail.startswith("SELECT * FROM product WHERE category_id = 0\n0.5 ms · 3 rows · django:default")
        assert detail.endswith("from catalog/views.py:40")
        await pilot.press(*["down"] * 12)  # past the queries: the call, with the whole URL (masked by the recorder)
        call = text_of(screen, "#timeline-item")
        assert call.startswith("GET http://127.0.0.1:9000/prices?key=********\n200 · 12 ms · 512 B received")
        assert call.endswith("from catalog/prices.py:12")
        await pilot.press("down")  # the template
        assert text_of(screen, "#timeline-item") == "catalog/list.html\n4.0 ms · django\nfrom catalog/views.py:44"



@pytest.mark.parametrize("size", SIZES)
async def test_the_logs_tab_picks_a_line_and_shows_where_it_was_logged(size: tuple[int, int]) -> None:
    long = "stock for " + "sku-123 " * 30 + "\x1b[2Jdone"
    request = catalog(logs=("a print", long, "WARNING:catalog.views:low stock"),
                      log_sources=(("", "", ""), ("info", "catalog.stock", "catalog/stock.py:17"),
                                   ("warning", "catalog.views", "catalog/views.py:52")))
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_detail(pilot, app, request)
        await pilot.press("4")
        await until(pilot, lambda: screen.tab == "logs")
        await pilot.pause()
        table = screen.query_one("#log-lines", DataTable)
        assert table.has_focus and table.row_count == 3
        assert [str(c) for c in table.get_row_at(2)] == ["warning", "catalog.views", "WARNING:catalog.views:low stock"]
        assert text_of(screen, "#log-line") == "a print\nprinted (print(), stdout, stderr or wsgi.errors): no source location"
        await pilot.press("down")  # the long line: shortened in its row, whole and escaped below, with its place
        assert str(table.get_row_at(1)[2]).endswith("…")
        detail = text_of(screen, "#log-line")
        assert detail == ("stock for " + "sku-123 " * 30 + "\\x1b[2Jdone\n"
                          "logged at catalog/stock.py:17 by catalog.stock (info)")
        await pilot.press("down")
        assert text_of(screen, "#log-line").endswith("logged at catalog/views.py:52 by catalog.views (warning)")
        assert "logged at catalog/views.py:52" in drawn(screen)  # on screen, at 80×24 too



FLASK_SHOP = """
import logging

from flask import Flask

app = Flask(__name__)
log = logging.getLogger("shop.orders")


@app.route("/order/<tag>")
def order(tag):
    print(f"order {tag} seen")
    log.warning("order %s held", tag)
    app.logger.error("order %s refused", tag)
    return "ok"
"""


def line_of(text: str, source: str) -> int:
    return next(n for n, line in enumerate(source.lstrip().splitlines(), 1) if text in line)


@pytest.mark.parametrize("size", SIZES)
async def test_a_flask_views_logged_lines_name_their_place_in_the_project(size: tuple[int, int], tmp_path: Path) -> None:
    """A real worker: the line of the stdlib's last-resort handler and the line of Flask's own handler (to
    wsgi.errors) both name the view's file and line; the print names none."""
    (tmp_path / "html_page").mkdir()
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "orders.py").write_text(FLASK_SHOP.lstrip())
    config = Config(host="127.0.0.1", port=0, root=str(tmp_path / "html_page"), dynamic=str(tmp_path / "dynamic"),
                    app="shop.orders:app", app_dir=str(tmp_path), workers=1, reload=False,
                    livereload=False).resolved()
    with dashboard_over(config) as (app, port):
        async with app.run_test(size=size) as pilot:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/order/a7")
            assert conn.getresponse().read() == b"ok"
            conn.close()
            await until(pilot, lambda: len(app.main.request_log.rows) == 1, timeout=30)
            await pilot.press("end", "enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen))
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            await pilot.press("4")
            await until(pilot, lambda: screen.tab == "logs")
            await pilot.pause()
            table = screen.query_one("#log-lines", DataTable)
            rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
            assert [row[:2] for row in rows] == [["print", "—"], ["warning", "shop.orders"], ["error", "shop.orders"]]
            assert text_of(screen, "#log-line").endswith("printed (print(), stdout, stderr or wsgi.errors): no source location")
            await pilot.press("down")
            held = line_of("order %s held", FLASK_SHOP)
            assert text_of(screen, "#log-line") == f"order a7 held\nlogged at shop/orders.py:{held} by shop.orders (warning)"
            await pilot.press("down")
            refused = line_of("order %s refused", FLASK_SHOP)
            assert text_of(screen, "#log-line").endswith(f"logged at shop/orders.py:{refused} by shop.orders (error)")
            assert f"shop/orders.py:{refused}" in drawn(screen)


def test_the_bars_add_up_and_fit_the_width() -> None:
    rows = shares(catalog())
    by = {r.label: r.ms for r in rows}
    assert by["total"] == 45.0 and by["server"] == 5.0 and by["app"] == 40.0
    assert by["SQL"] == pytest.approx(7.5) and by["outbound"] == 12.0 and by["templates"] == 4.0
    assert by["app code"] == pytest.approx(40.0 - 7.5 - 12.0 - 4.0)
    from rich.console import Console

    for width in (60, 150):
        console = Console(width=width, record=True)
        console.print(Bars(rows))
        assert all(len(line) <= width for line in console.export_text().splitlines())
    assert [r.label for r in shares(event(duration_ms=3.0))] == ["total"]  # nothing recorded inside


async def test_a_request_without_inside_records_says_so_in_its_timeline() -> None:
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_detail(pilot, app, event(target="/plain"))
        await pilot.press("3")
        await until(pilot, lambda: screen.tab == "timeline")
        await pilot.pause()
        assert "Nothing was recorded inside the app" in drawn(screen)
        assert not screen.query("#timeline-items")


@pytest.mark.parametrize("size", SIZES)
async def test_a_profiled_request_opens_on_its_call_tree(size: tuple[int, int]) -> None:
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_detail(pilot, app, catalog(inside=inside(PROFILE)))
        assert screen.tab == "timeline"
        tree = screen.query_one("#profile-tree", Tree)
        labels = []
        node = tree.root
        while node.children:
            node = node.children[0]
            labels.append(str(node.label))
        assert "handler  django/core/handlers/base.py:181" in labels[0]
        assert "product_list  catalog/views.py:36" in labels[1] and "execute" in labels[2]
        siblings = [str(c.label) for c in tree.root.children[0].children[0].children]
        assert "django/db/backends/utils.py:100  (self 20 ms)" in siblings[0] and "catalog/prices.py:10" in siblings[1]
        assert "GET /catalog: 40 samples every 1 ms (pyinstrument)" in str(tree.root.label)


# -- profile arming ----------------------------------------------------------------------------------------------


class RecordingControl(FakeControl):
    """The fake supervisor, noting the thread each arm_profile call came on."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str | None, bool]] = []

    def arm_profile(self, route: str | None) -> None:
        super().arm_profile(route)
        self.calls.append((route, threading.current_thread() is threading.main_thread()))


def armed_app(control: RecordingControl) -> DashboardApp:
    return DashboardApp(Config(workers=2), control, started=BASE, clock=lambda: BASE + 83, drain_interval=0.0)


def header_text(app: DashboardApp) -> str:
    return str(app.main.query_one("#header-info").render())


@pytest.mark.parametrize("size", SIZES)
async def test_P_arms_the_selected_route_and_the_header_says_so_until_its_profile_arrives(size: tuple[int, int]) -> None:
    control = RecordingControl()
    app = armed_app(control)
    async with app.run_test(size=size) as pilot:
        app.feed([ServerEvent(BASE, "listening", url="http://127.0.0.1:65432/", workers=2), catalog()])
        await until(pilot, lambda: app.main.request_log.row_count == 1)
        await pilot.press("P")
        await until(pilot, lambda: "profiling next GET /catalog" in header_text(app))
        assert control.calls == [("GET /catalog", False)]  # the route without its query, from a worker thread
        assert "http://127.0.0.1:65432/" in str(app.main.query_one("#site-url").render())
        # The profiled request arrives: the indicator goes, its row is marked, its detail opens on the call tree.
        app.feed([catalog(time=BASE + 5, inside=inside(PROFILE))])
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert isinstance(app.screen, DetailScreen) and app.screen.tab == "timeline"
        assert app.screen.request.inside is not None and app.screen.request.inside.profile is PROFILE
        assert "profiling" not in header_text(app)
        assert app.main.request_log.rows[-1].inside.profile is PROFILE  # type: ignore[union-attr]
        row = app.main.request_log.render_line(2).text
        assert PROFILED_MARK + "/catalog?page=2" in row


async def test_p_in_the_detail_arms_its_route_and_again_disarms() -> None:
    control = RecordingControl()
    app = armed_app(control)
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed([event(method="POST", target="/orders/7?x=1")])
        await until(pilot, lambda: app.main.request_log.row_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("p")
        await until(pilot, lambda: app.main.profiling == "POST /orders/7")
        armed = app.screen.query_one("#detail-armed", Static)  # the header is the main screen's: said here too
        await until(pilot, lambda: armed.display and "the next POST /orders/7" in str(armed.content))
        assert armed.region.height == 1 and armed.region.y > 0  # drawn, under the request line
        await pilot.press("p")
        await until(pilot, lambda: app.main.profiling is None and len(control.calls) == 2)
        await until(pilot, lambda: not armed.display)
        assert [route for route, _ in control.calls] == ["POST /orders/7", None]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
        assert "profiling" not in header_text(app)


async def test_without_a_server_arming_says_so() -> None:
    app, notes = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed([catalog()])
        await until(pilot, lambda: app.main.request_log.row_count == 1)
        await pilot.press("P")
        await until(pilot, lambda: "No server attached." in notes)
        assert app.main.profiling is None


# -- 80x24: every key reachable, the URL whole -------------------------------------------------------------------

LONG_URL = "http://127.0.0.1:65432/"


@pytest.mark.parametrize("size", [(80, 24), (60, 20), (160, 50)])
async def test_the_header_keeps_the_whole_url_and_shortens_the_rest(size: tuple[int, int]) -> None:
    control = RecordingControl()
    app = armed_app(control)
    async with app.run_test(size=size) as pilot:
        app.feed([ServerEvent(BASE, "listening", url=LONG_URL, workers=2), catalog(target="/a/long/route/name")])
        await until(pilot, lambda: app.main.request_log.row_count == 1)
        await pilot.press("P")
        await until(pilot, lambda: app.main.profiling == "GET /a/long/route/name")
        await pilot.pause()
        header = app.main.query_one(DashboardHeader)
        link = header.query_one("#site-url")
        assert str(link.render()) == LONG_URL and link.region.right <= size[0]
        info = header.query_one("#header-info")
        assert info.region.right <= size[0] and len(str(info.render())) <= info.region.width
        if size[0] >= 80:
            assert "profiling next GET /a/long/route/name" in header_text(app)


@pytest.mark.parametrize("size", SIZES)
async def test_the_detail_footer_keeps_back_tabs_expand_help_and_quit(size: tuple[int, int]) -> None:
    app, _ = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await open_detail(pilot, app, catalog())

        def on_screen() -> set[str]:
            return {k.action for k in screen.query(FooterKey)
                    if k.display and k.parent is not None and k.parent.display and k.region.width
                    and 0 <= k.region.x and k.region.right <= size[0]}

        needed = {"dismiss", "tab('request')", "tab('response')", "expand", "profile", "help", "quit", "open_site"}
        await until(pilot, lambda: needed <= on_screen())
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        listed = {b.action for b in help_screen.detail}
        assert {"tab('request')", "tab('console')", "expand", "profile", "console"} <= listed


# -- HAR ---------------------------------------------------------------------------------------------------------


def test_har_carries_queries_calls_templates_and_the_profile_as_custom_fields() -> None:
    entry = har_entry(catalog(inside=inside(PROFILE)), "http://127.0.0.1:8000/")
    assert entry["_appTime"] == 40.0
    assert len(entry["_queries"]) == 13
    assert entry["_queries"][1] == {"sql": "SELECT * FROM product WHERE category_id = 0", "ms": 0.5, "started_ms": 2.0,
                                    "rows": 3, "source": "catalog/views.py:40", "database": "django:default",
                                    "error": ""}
    assert entry["_repeatedQueries"][0]["count"] == 12
    call = entry["_outbound"][0]
    assert (call["method"], call["url"], call["status"], call["ms"]) == (
        "GET", "http://127.0.0.1:9000/prices?key=********", 200, 12.0)
    assert entry["_templates"] == [{"name": "catalog/list.html", "ms": 4.0, "started_ms": 30.0, "engine": "django",
                                    "source": "catalog/views.py:44"}]
    assert entry["_profile"]["route"] == "GET /catalog"
    assert [n["function"] for n in entry["_profile"]["nodes"]] == ["handler", "product_list", "execute", "fetch_prices"]
    document = json.loads(har_json([catalog(inside=inside(PROFILE)), event()], "http://127.0.0.1:8000/"))
    plain = document["log"]["entries"][1]
    assert not [name for name in plain if name.startswith("_") and name != "_workerPid"]  # nothing recorded: none
    assert "_profile" not in har_entry(catalog(), "http://127.0.0.1:8000/")


async def test_statements_and_urls_reach_the_table_as_text_never_as_markup_or_control_characters() -> None:
    hostile = InsideRecord(app_ms=2.0, queries=(QueryRecord("SELECT '[b]x[/b]' -- \x1b[2J", 0.5, 0.1, source="v.py:1"),),
                           outbound=(OutboundRecord("GET", "http://h/[link=http://evil]x[/link]", 200, 1.0, 0.5),),
                           profile=ProfileRecord("GET /[b]r[/b]", 1.0, 1, (ProfileNode(0, "f[i]", "v.py:1", 1.0),)))
    app, _ = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_detail(pilot, app, event(inside=hostile, duration_ms=3.0))
        await pilot.press("3")
        await until(pilot, lambda: screen.tab == "timeline")
        await pilot.pause()
        shown = drawn(screen)
        assert "SELECT '[b]x[/b]' -- \\x1b[2J" in shown and "\x1b" not in shown
        assert "http://h/[link=http://evil]x[/link]" in shown
        assert "GET /[b]r[/b]: 1 samples" in shown and "f[i]" in shown
