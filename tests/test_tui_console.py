"""Pilot tests of ``x``: the console of a failed request, driven in the dashboard against real workers."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import dashboard_over, until
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from devserver.ipc.config import Config
from devserver.ipc.events import ServerEvent
from devserver.supervisor.core import Supervisor
from tui.app import DashboardApp
from tui.screens.console import ConsoleScreen
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dashboard(site: Path) -> Iterator[tuple[DashboardApp, list[str], int]]:
    """A dashboard fed by a real supervisor, as tui.run starts them."""
    config = Config(host="127.0.0.1", port=0, root=str(site / "html_page"), dynamic=str(site / "dynamic"),
                    workers=2, reload=False, livereload=False).resolved()
    app = DashboardApp(config, None, drain_interval=0.0)
    notes: list[str] = []
    original = app.notify
    app.notify = lambda message, *a, **k: (notes.append(message), original(message, *a, **k))[1]  # type: ignore
    supervisor = Supervisor(config, sink=app.feed)
    app.control = supervisor
    supervisor.start()
    app.feed([ServerEvent(time.time(), "listening", url=supervisor.config.url)])
    yield app, notes, supervisor.config.port
    supervisor.stop()


def get(port: int, target: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", target)
    conn.getresponse().read()
    conn.close()
    return 0


def transcript(app: DashboardApp) -> str:
    return str(app.screen.query_one("#console-log").content)


async def run(pilot: Pilot[Any], app: DashboardApp, source: str) -> None:
    screen = app.screen
    assert isinstance(screen, ConsoleScreen)
    before = len(screen.transcript)
    screen.query_one("#console-input", Input).value = source
    await pilot.press("enter")
    await until(pilot, lambda: len(screen.transcript) > before and screen.pending == 0)


async def test_x_runs_python_in_the_failing_frames_of_the_worker(dashboard: Any) -> None:
    app, notes, port = dashboard
    async with app.run_test(size=(120, 40)) as pilot:
        get(port, "/echo.py")
        get(port, "/console_boom.py?abc")
        log = app.main.request_log
        await until(pilot, lambda: len(log.rows) == 2)
        await pilot.press("home", "enter")  # a request that did not fail: x is neither shown nor active
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert not app.screen.check_action("console", ())
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("escape", "end", "enter", "x")
        await until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        failed = log.rows[1]
        frames = app.screen.query_one("#console-frames", OptionList)
        assert frames.option_count == 2 and frames.highlighted == 1  # the frame that raised, newest last
        await run(pilot, app, "(label, doubled, __import__('os').getpid())")
        assert transcript(app).endswith(repr(("order-abc", 18, failed.worker_pid)))
        await run(pilot, app, "n = doubled + 1")  # statements too, and the name stays for the next line
        assert transcript(app).endswith(">>> n = doubled + 1")  # no value, as at a Python prompt
        await run(pilot, app, "print('said \\x1b[2J', tag); n")
        assert transcript(app).endswith("said \\x1b[2J abc\n19")  # printed output, escaped, then the value
        await pilot.press("ctrl+up")  # the calling frame: the app's own function
        assert frames.highlighted == 0
        await run(pilot, app, "weight")
        assert transcript(app).endswith("[application] >>> weight\n9")
        await run(pilot, app, "n")
        assert transcript(app).endswith("! NameError: name 'n' is not defined")
        await pilot.press("escape", "escape", "question_mark")  # the help screen lists x
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert any(b.key == "x" and "failing frames" in (b.tooltip or "") for b in app.screen.detail)
        assert "nothing over HTTP can reach it" in str(app.screen.query_one("#help-console").content)


FLASK_APP = '''
from flask import Flask

app = Flask(__name__)


@app.route("/order/<tag>")
def order(tag):
    weight = len(tag) * 3
    raise ValueError(f"order {tag} refused ({weight})")
'''


@pytest.fixture
def flask_dashboard(tmp_path: Path) -> Iterator[tuple[DashboardApp, int]]:
    """A dashboard over a Flask APP: Flask, left to itself, answers its own 500 and keeps the exception."""
    (tmp_path / "html_page").mkdir()
    (tmp_path / "flaskorders.py").write_text(FLASK_APP.lstrip())
    config = Config(host="127.0.0.1", port=0, root=str(tmp_path / "html_page"), dynamic=str(tmp_path / "dynamic"),
                    app="flaskorders:app", app_dir=str(tmp_path), workers=1, reload=False,
                    livereload=False).resolved()
    with dashboard_over(config) as running:
        yield running


async def test_x_reaches_the_frame_of_a_flask_view_that_raised(flask_dashboard: Any) -> None:
    app, port = flask_dashboard
    async with app.run_test(size=(120, 40)) as pilot:
        get(port, "/order/abcd")
        log = app.main.request_log
        await until(pilot, lambda: len(log.rows) == 1, timeout=30)
        assert log.rows[0].status == 500 and log.rows[0].error_report is not None
        await pilot.press("end", "enter", "x")
        await until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        frames = app.screen.query_one("#console-frames", OptionList)
        assert frames.highlighted == frames.option_count - 1  # the view's frame, which raised
        await run(pilot, app, "(tag, weight)")
        assert transcript(app).endswith(repr(("abcd", 12)))
