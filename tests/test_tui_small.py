"""The dashboard on small terminals: keys reachable, panels that do not wrap mid-value or scroll sideways."""

from __future__ import annotations

import time
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Footer, Input, Static
from textual.widgets._footer import FooterKey

from devserver.ipc.config import Config
from devserver.ipc.events import RequestEvent, ServerEvent, WorkerEvent, WorkerStatus
from tui.app import DashboardApp
from tui.screens.help import HelpScreen
from tui.widgets.filter_bar import placeholder_for
from tui.widgets.server_log import ServerLog
from tui.widgets.stats import fit
from tui.widgets.workers import WorkersPanel

BASE = 1_700_000_000.0
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def traffic() -> list[Any]:
    events: list[Any] = [WorkerEvent(BASE, 4194301 + i, "started", index=i) for i in range(2)]
    events += [WorkerStatus(BASE, 4194301 + i, 123456, 12, 512 * 1024 * 1024) for i in range(2)]
    events += [RequestEvent(BASE + i, 4194301 + i % 2, "127.0.0.1:5000", "GET", f"/items/{i}?page=2", "1.1",
                            200 if i % 5 else 500, 12345, 1234.5 if i % 3 else 0.4) for i in range(40)]
    return events


def make_app() -> DashboardApp:
    return DashboardApp(Config(workers=2), None, started=BASE, clock=lambda: BASE + 3600, drain_interval=0.0)


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_help_is_on_the_footer_and_lists_every_key(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        app.feed(traffic())
        # On screen, not scrolled off (once the footer has fitted itself to the width: tui/footer.py).
        await settled(pilot, lambda: "app.help" in footer_keys_on_screen(app, size[0]))
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        listed = {b.action for b in app.screen.bindings}
        for action in ("select", "filter", "pause", "clear", "replay", "copy('curl')", "copy('httpie')", "har",
                       "edit", "reload", "open_site", "help", "quit"):
            assert action in listed
        dialog = app.screen.query_one("#help-dialog")
        assert dialog.region.height <= size[1] and dialog.region.width <= size[0]
        dialog.scroll_end(animate=False)  # the end of the filter syntax is reachable
        await pilot.pause()
        assert dialog.scroll_y == dialog.max_scroll_y


async def settled(pilot: Any, condition: Any, timeout: float = 5.0) -> None:
    """Let layout and redraws run until ``condition()`` holds (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await pilot.pause(0.05)


async def test_at_80x24_side_panels_do_not_wrap_or_scroll_sideways() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed(traffic())
        workers = app.screen.query_one(WorkersPanel)
        # Columns are fitted once the rows and the layout are in: no sideways scrollbar, ever after.
        await settled(pilot, lambda: workers.row_count == 2 and not workers.show_horizontal_scrollbar)
        for line in app.screen.query("StatsPanel Static"):
            if line.id != "rps":  # lines are fitted between items (tui.widgets.stats.fit), never wrapped by the widget
                assert isinstance(line, Static)
                assert line.region.height == len(str(line.content).split("\n")), f"#{line.id} wraps"
        assert not workers.show_horizontal_scrollbar
        assert "MEM" not in workers.shown_columns and "REQS" in workers.shown_columns


async def test_at_60x20_the_log_takes_the_width() -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        app.feed(traffic())
        await pilot.pause(0.3)
        assert not app.screen.query_one("#side").display
        log = app.main.request_log
        assert log.region.width == 60 and log.region.height >= 8


async def test_at_160_columns_the_workers_panel_has_every_column_and_no_scrollbar() -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        app.feed(traffic())
        workers = app.screen.query_one(WorkersPanel)
        await settled(pilot, lambda: workers.row_count == 2 and not workers.show_horizontal_scrollbar)
        assert workers.shown_columns == WorkersPanel.COLUMNS
        assert not workers.show_horizontal_scrollbar and not workers.show_vertical_scrollbar


# -- issue 20, item 16: every key and every URL at 80x24 ---------------------------------------------------------

FOOTER_ACTIONS = {"select", "app.help", "filter", "pause", "clear", "replay", "copy('curl')", "copy('httpie')", "har",
                  "profile", "reload", "open_site", "quit"}  # every key of the main screen but e (Edit: ? lists it)
NARROW_DROPS = {"clear", "reload"}  # the first keys the footer drops (tui/widgets/footer.DROP_ORDER): ? lists them
SIZES = [(80, 24), (120, 36), (160, 48)]


def footer_keys_on_screen(app: DashboardApp, width: int) -> set[str]:
    footer = app.screen.query_one(Footer)
    return {key.action for key in footer.query(FooterKey)
            if key.region.width and key.region.x >= 0 and key.region.right <= width}


@pytest.mark.parametrize("size", SIZES)
async def test_the_footer_keeps_the_keys_most_used_and_help_lists_every_one(size: tuple[int, int]) -> None:
    app = make_app()
    shown = FOOTER_ACTIONS - NARROW_DROPS if size[0] < 100 else FOOTER_ACTIONS
    async with app.run_test(size=size) as pilot:
        app.feed(traffic())
        await settled(pilot, lambda: shown <= footer_keys_on_screen(app, size[0]))
        footer = app.screen.query_one(Footer)
        keys = [key for key in footer.query(FooterKey) if key.display and key.parent.display]
        assert all(key.region.right <= size[0] for key in keys)  # no key cut at the edge or scrolled off it
        listed = {b.action for b in app.key_bindings()}
        assert {a.removeprefix("app.") for a in FOOTER_ACTIONS} | {"edit"} == listed


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_help_screen_has_a_footer_saying_how_to_close_it(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        await settled(pilot, lambda: isinstance(app.screen, HelpScreen) and "dismiss" in footer_keys_on_screen(
            app, size[0]))
        assert "Esc, q or ? closes" in str(app.screen.query_one("#help-title").content)
        dialog = app.screen.query_one("#help-dialog")
        footer = app.screen.query_one(Footer)
        assert dialog.region.bottom <= footer.region.y  # the dialog never hides the footer
        await pilot.press("escape")
        await settled(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("question_mark")
        await settled(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("q")  # closes the help; it does not stop the server
        await settled(pilot, lambda: not isinstance(app.screen, HelpScreen))
        assert app.is_running


async def test_f1_in_the_filter_bar_opens_the_syntax_and_closes_it() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", "question_mark")  # typed into the filter, as any character
        await pilot.pause()
        assert app.screen.query_one("#filter", Input).value == "?" and not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await settled(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("f1")
        await settled(pilot, lambda: not isinstance(app.screen, HelpScreen))


@pytest.mark.parametrize("size", SIZES)
async def test_the_filter_hint_fits_and_says_how_to_get_help_and_out(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press("slash")
        bar = app.screen.query_one("#filter", Input)
        await settled(pilot, lambda: bar.region.width > 0 and bar.placeholder == placeholder_for(bar.content_region.width))
        assert len(bar.placeholder) < bar.content_region.width
        assert "F1 syntax" in bar.placeholder and "Esc clears" in bar.placeholder
        if size[0] >= 120:
            assert "~s 5xx" in bar.placeholder  # an example, where there is room


LONG_NOTE = ("no html_page/ or dynamic/ folder here: serving the files of this folder "
             "(/home/someone/projects/site), as python -m http.server does")


def server_lines(app: DashboardApp) -> list[str]:
    return [strip.text.rstrip() for strip in app.screen.query_one(ServerLog).lines]


@pytest.mark.parametrize("size", SIZES)
async def test_server_panel_lines_wrap_between_words_and_keep_urls_whole(size: tuple[int, int]) -> None:
    app = make_app()
    url = "http://127.0.0.1:65432/"
    notices = (LONG_NOTE, "reachable from the network at http://192.168.100.200:65432/")
    async with app.run_test(size=size) as pilot:
        app.feed([ServerEvent(BASE, "listening", url=url, workers=2, details=notices)])
        log = app.screen.query_one(ServerLog)
        await settled(pilot, lambda: any(url in line for line in server_lines(app)))
        width = log.scrollable_content_region.width
        assert all(len(line) <= width for line in server_lines(app)), server_lines(app)
        assert any("http://192.168.100.200:65432/" in line for line in server_lines(app))
        assert not log.show_horizontal_scrollbar


async def test_server_panel_wraps_again_when_the_terminal_is_resized() -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        app.feed([ServerEvent(BASE, "listening", url="http://127.0.0.1:8899/", workers=2, details=(LONG_NOTE,))])
        await settled(pilot, lambda: any("http.server" in line for line in server_lines(app)))
        wide = len(server_lines(app))
        await pilot.resize_terminal(80, 24)
        log = app.screen.query_one(ServerLog)
        await settled(pilot, lambda: len(server_lines(app)) > wide)
        assert all(len(line) <= log.scrollable_content_region.width for line in server_lines(app))


@pytest.mark.parametrize("size", SIZES)
async def test_latency_values_are_never_cut_from_their_label(size: tuple[int, int]) -> None:
    app = make_app()
    slow = [RequestEvent(BASE + i, 4194301, "127.0.0.1:5000", "GET", "/slow", "1.1", 200, 10, ms)
            for i, ms in enumerate([121.0] * 50 + [1234.5] * 50 + [12345.6] * 5)]
    async with app.run_test(size=size) as pilot:
        app.feed(slow)
        latency = app.screen.query_one("#latency", Static)
        await settled(pilot, lambda: "p99 12.35 s" in str(latency.content))
        text = str(latency.content)
        assert "p50 1.23 s" in text and "p95 1.23 s" in text
        assert latency.region.width == 0 or all(len(line) <= latency.content_region.width for line in text.split("\n"))
        # Each fitted line is one line on screen (once the layout has caught up with the new text).
        await settled(pilot, lambda: latency.region.height == len(str(latency.content).split("\n")))


def test_fit_breaks_only_between_items() -> None:
    items = [Text("p50 121 ms"), Text("p95 1.23 s"), Text("p99 12.35 s")]
    assert fit(items, 30).plain == "p50 121 ms p95 1.23 s\np99 12.35 s"
    assert fit(items, 40).plain == "p50 121 ms p95 1.23 s p99 12.35 s"
    assert fit(items, 5).plain == "p50 121 ms\np95 1.23 s\np99 12.35 s"  # one item a line, never cut
