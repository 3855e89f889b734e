"""The dashboard and the terminal it runs in: escaped request text, reload entries, opening a browser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_tui import BASE, FakeControl, make_app, request, until

from devserver.ipc.events import LogEvent, ReloadEvent, ServerEvent
from tui.browser import find_browser
from tui.screens.detail import DetailScreen
from tui.widgets.reloads import ReloadsPanel
from tui.widgets.server_log import ServerLog

pytestmark = pytest.mark.anyio

RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\r")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def shown_text(widget: Any) -> str:
    return str(widget.render())


def assert_escaped(text: str) -> None:
    assert not [c for c in RAW_CONTROLS if c in text], repr(text)


# -- item 11: request- and app-derived text is escaped --------------------------------------------------------

async def test_detail_screen_shows_control_characters_escaped() -> None:
    app = make_app()
    hostile = request(
        1, 500, "GET", "/echo.py?q=%1b%5b2J&b=%1b]0;pwned%07",
        request_headers=(("Host", "localhost"), ("X-Evil", "\x1b]52;c;cHduZWQ=\x07")),
        response_headers=(("X-Echo", "\x1b[31mred"),),
        body_preview=b"name=\x1b[2J\r",
        traceback="Traceback (most recent call last):\nValueError: \x1b]0;pwned\x07",
        error="bad \x1b[2J thing",
    )
    async with app.run_test(size=(120, 50)) as pilot:
        app.feed([hostile])
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        screen = app.screen
        texts = {widget.id or f"#{n}": shown_text(widget) for n, widget in enumerate(screen.query("Static"))}
        for text in texts.values():
            assert_escaped(text)
        assert_escaped(screen.title or "")
        everything = "\n".join(texts.values())
        assert "q = \\x1b[2J" in everything and "b = \\x1b]0;pwned\\x07" in everything  # the decoded query
        assert "X-Evil: \\x1b]52;c;cHduZWQ=\\x07" in texts["request-headers"]
        assert "X-Echo: \\x1b[31mred" in texts["response-headers"]
        assert "ValueError: \\x1b]0;pwned\\x07" in texts["traceback"]
        assert "bad \\x1b[2J thing" in everything
        drawn = []
        for tab in "12345":  # what each tab draws (a hidden tab draws nothing)
            await pilot.press(tab)
            await pilot.pause()
            drawn += [segment.text for widget in screen.query("Static") for y in range(widget.size.height)
                      for segment in widget.render_line(y)]
        assert "X-Evil: \\x1b]52;c;cHduZWQ=\\x07" in "".join(drawn)
        assert_escaped("".join(drawn))


async def test_server_panel_and_request_log_show_app_text_escaped() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed([
            LogEvent(BASE, 11, "printed \x1b[2J\x1b]0;pwned\x07", "info"),
            LogEvent(BASE, 11, "to stderr \x9b2J", "error"),
            request(1, target="/?q=\x1b[2J"),
            ServerEvent(BASE, "listening", url="http://0.0.0.0:8899/", details=("warning: \x1b[2J beware",)),
        ])
        await pilot.pause()
        log = app.main.query_one(ServerLog)
        lines = [strip.text for strip in log.lines]
        for line in lines:
            assert_escaped(line)
        assert any("printed \\x1b[2J\\x1b]0;pwned\\x07" in line for line in lines)
        assert any("to stderr \\x9b2J" in line for line in lines)
        assert any(line.strip() == "warning: \\x1b[2J beware" for line in lines)  # a detail on a line of its own
        rows = "".join(segment.text for y in range(3) for segment in app.main.request_log.render_line(y))
        assert "/?q=\\x1b[2J" in rows
        assert_escaped(rows)


# -- item 14: one reload entry per module per failure --------------------------------------------------------

def import_failure(pid: int, error: str = "RuntimeError: not today", module: str = "broken") -> ReloadEvent:
    return ReloadEvent(BASE, (), (module,), 0.0, f"Traceback (most recent call last):\n  ...\n{error}\n", pid)


def entries(app: Any) -> list[str]:
    text = str(app.main.query_one(ReloadsPanel).query_one("#reload-list").render())
    return [line for line in text.splitlines() if line.strip()]


async def test_reloads_panel_keeps_one_entry_per_module_per_failure() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed([import_failure(4000 + i % 2) for i in range(25)])  # 25 requests, two workers
        await pilot.pause()
        assert len(entries(app)) == 1 and "broken.py: FAILED RuntimeError: not today" in entries(app)[0]
        app.feed([import_failure(4000, "RuntimeError: another"), import_failure(4001, "RuntimeError: another")])
        await pilot.pause()
        assert len(entries(app)) == 2 and "another" in entries(app)[0]  # newest first
        app.feed([ReloadEvent(BASE, ("/site/dynamic/broken.py",), ("broken",), 1.0)])  # a save
        app.feed([import_failure(4000, "RuntimeError: another")])
        await pilot.pause()
        assert len(entries(app)) == 4  # the save, then the same failure again: news after a reload
        app.feed([import_failure(4001, "RuntimeError: another")])
        app.feed([import_failure(4001, "RuntimeError: at import", module="other")])
        await pilot.pause()
        assert len(entries(app)) == 5 and entries(app)[0].split(" ", 2)[2].startswith("other.py: FAILED")


async def test_shift_r_adds_a_reload_entry() -> None:
    """`R` reaches the supervisor, whose reload_all reports a reload of every module."""
    app = make_app()

    class Reporting(FakeControl):
        def reload_all(self) -> None:
            super().reload_all()
            app.feed([ReloadEvent(BASE, (), (), 3.0)])  # what Supervisor.reload_all sends its sink

    app.control = Reporting()
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed([import_failure(4000)])
        await pilot.pause()
        await pilot.press("R")
        await until(pilot, lambda: len(entries(app)) == 2)
        assert "all modules reloaded (R)" in entries(app)[0]
        app.feed([import_failure(4000)])  # still failing after the reload: a new entry
        await until(pilot, lambda: len(entries(app)) == 3)


# -- item 13: `o` opens a graphical browser only, off the UI thread ------------------------------------------

def fake_program(folder: Path, name: str, log: Path, body: str = "") -> Path:
    """An executable that appends its name and arguments to ``log`` (then runs ``body``)."""
    folder.mkdir(exist_ok=True)
    program = folder / name
    program.write_text(f'#!/bin/sh\nPATH=/usr/bin:/bin\necho "{name} $*" >> "{log}"\n{body}\n')
    program.chmod(0o755)
    return program


@pytest.fixture
def desktop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A PATH of fake programs only (bin/) and the log they write; no display, no $BROWSER yet."""
    bin_dir, log = tmp_path / "bin", tmp_path / "launched.log"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    return bin_dir, log


def launched(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def test_o_opens_a_graphical_browser_and_the_header_link_too(desktop: tuple[Path, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, log = desktop
    fake_program(bin_dir, "firefox", log)
    fake_program(bin_dir, "w3m", log)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("BROWSER", "w3m")  # a console browser named first is passed over
    app = make_app(port=8123)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("o")
        await until(pilot, lambda: launched(log) == ["firefox http://127.0.0.1:8123/"])
        await pilot.click("#site-url")
        await until(pilot, lambda: len(launched(log)) == 2)
        app.feed([ServerEvent(BASE, "listening", url="http://[::1]:9000/")])
        await pilot.pause()
        await pilot.press("o")
        await until(pilot, lambda: launched(log)[-1:] == ["firefox http://[::1]:9000/"])
    assert not [line for line in launched(log) if line.startswith("w3m")]
    assert app.clipboard == ""


async def test_a_slow_browser_does_not_hold_up_the_dashboard(desktop: tuple[Path, Path], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, log = desktop
    go = tmp_path / "go"
    fake_program(bin_dir, "xdg-open", log, f'while [ ! -e "{go}" ]; do sleep 0.05; done')
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("o")
        await until(pilot, lambda: len(launched(log)) == 1)
        await pilot.press("p")  # the launcher is still running: keys still work
        await until(pilot, lambda: app.main.request_log.paused)
        go.touch()


async def test_without_a_graphical_browser_the_url_is_copied(desktop: tuple[Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, log = desktop
    os.symlink(fake_program(bin_dir, "w3m", log), bin_dir / "www-browser")  # Debian's console alternative
    fake_program(bin_dir, "lynx", log)
    fake_program(bin_dir, "firefox", log)  # installed, but there is no display to show it on
    notes: list[str] = []
    app = make_app(port=8123)
    app.notify = lambda message, *a, **k: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("o")
        await until(pilot, lambda: app.clipboard == "http://127.0.0.1:8123/")
        assert notes == ["No graphical browser found: http://127.0.0.1:8123/ copied to the clipboard."]
        (bin_dir / "firefox").unlink()
        monkeypatch.setenv("DISPLAY", ":99")  # a display, but only console browsers
        app.copy_to_clipboard("")
        await pilot.press("o")
        await until(pilot, lambda: app.clipboard == "http://127.0.0.1:8123/")
    assert launched(log) == []


async def test_a_failing_launcher_is_reported_and_the_url_copied(desktop: tuple[Path, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, log = desktop
    fake_program(bin_dir, "xdg-open", log, "exit 3")
    monkeypatch.setenv("DISPLAY", ":99")
    notes: list[str] = []
    app = make_app(port=8123)
    app.notify = lambda message, *a, **k: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("o")
        await until(pilot, lambda: app.clipboard == "http://127.0.0.1:8123/")
    assert launched(log) == ["xdg-open http://127.0.0.1:8123/"]
    assert notes[-1] == "xdg-open failed (exit status 3): http://127.0.0.1:8123/ copied to the clipboard."


def test_find_browser_follows_browser_variable_and_skips_console_ones(tmp_path: Path) -> None:
    log = tmp_path / "log"
    bin_dir = tmp_path / "bin"
    fake_program(bin_dir, "lynx", log)
    fake_program(bin_dir, "chromium", log)
    fake_program(bin_dir, "my-browser", log)
    env = {"PATH": str(bin_dir), "DISPLAY": ":1", "BROWSER": os.pathsep.join(["lynx", "my-browser --new %s"])}
    browser = find_browser(env, platform="linux")
    assert browser is not None and browser.argv("http://x/") == [str(bin_dir / "my-browser"), "--new", "http://x/"]
    assert find_browser({**env, "BROWSER": "lynx"}, platform="linux").name == "chromium"  # type: ignore[union-attr]
    assert find_browser({**env, "DISPLAY": ""}, platform="linux") is None


def test_an_all_interfaces_url_is_opened_on_loopback() -> None:
    from tui.browser import local_url

    assert local_url("http://0.0.0.0:8899/") == "http://127.0.0.1:8899/"
    assert local_url("http://[::]:8899/") == "http://[::1]:8899/"
    assert local_url("http://192.0.2.2:8899/") == "http://192.0.2.2:8899/"
    assert local_url("http://localhost:8899/") == "http://localhost:8899/"
