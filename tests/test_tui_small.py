"""The dashboard on small terminals: keys reachable, panels that do not wrap mid-value or scroll sideways."""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from devserver.config import Config
from devserver.events import RequestEvent, WorkerEvent, WorkerStatus
from tui.app import DashboardApp
from tui.help_screen import HelpScreen
from tui.workers import WorkersPanel

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
        await pilot.pause()
        footer = app.screen.query_one(Footer)
        shown = [k for k in footer.query(FooterKey) if k.key == "question_mark" and k.region.width]
        assert shown and shown[0].region.right <= size[0]  # on screen, not scrolled off
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
            if line.id != "rps":
                assert line.region.height == 1, f"#{line.id} wraps"
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
