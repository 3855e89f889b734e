"""``y``/``Y``/``W`` save into the user's data folder (or ``--export-dir``), never the project (issue 20, item 15)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import until
from test_tui_inspect import BASE, make_app
from textual.widgets._toast import Toast

from devserver.ipc.events import RequestEvent
from tui.app import DashboardApp
from tui.recorded.export import export_folder, saved_where

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder as the working directory, with a home of its own and no XDG_DATA_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def rows() -> list[RequestEvent]:
    return [RequestEvent(BASE + i, 4001, "127.0.0.1:50000", "GET", f"/page/{i}", "1.1", 200, 10, 5.0)
            for i in range(3)]


def toasts(app: DashboardApp) -> list[Toast]:
    return list(app.screen.query(Toast))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_exports_go_to_the_data_folder_and_the_toast_shows_the_path_whole(project: Path, size: tuple[int, int]) -> None:
    app, notes = make_app()
    exports = Path.home() / ".local" / "share" / "devserver" / "exports"
    async with app.run_test(size=size, notifications=True) as pilot:
        app.feed(rows())
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: exports.is_dir() and any(exports.iterdir()))
        [curl] = list(exports.iterdir())
        assert curl.name.endswith("-request.curl.sh") and curl.read_text().startswith("curl --path-as-is")
        assert stat.S_IMODE(curl.stat().st_mode) == 0o600 and stat.S_IMODE(exports.stat().st_mode) == 0o700
        assert notes[-1] == f"Copied as curl (clipboard), saved as\n{curl.name}\nin ~/.local/share/devserver/exports/"
        await until(pilot, lambda: bool(toasts(app)) and toasts(app)[-1].region.width > 0)
        toast = toasts(app)[-1]
        # Each line of the message on one line of the toast (title, 3 lines, padding): no path cut mid-name.
        assert toast.region.height == 1 + 3 + 2, toast.region
        assert toast.region.right <= size[0]
        await pilot.press("W")
        await until(pilot, lambda: any(p.suffix == ".har" for p in exports.iterdir()))
        await app.workers.wait_for_complete()
        har = next(p for p in exports.iterdir() if p.suffix == ".har")
        assert len(json.loads(har.read_text())["log"]["entries"]) == 3
        assert notes[-1] == f"3 requests written as\n{har.name}\nin ~/.local/share/devserver/exports/"
    assert list(project.iterdir()) == []  # nothing in the project: git status stays clean


async def test_export_dir_and_xdg_data_home_choose_the_folder(project: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert export_folder() == tmp_path / "data" / "devserver" / "exports"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # the XDG spec: ignored
    assert export_folder() == Path.home() / ".local" / "share" / "devserver" / "exports"
    chosen = tmp_path / "mine"
    app, notes = make_app(export_dir=str(chosen))
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed(rows())
        await pilot.pause()
        await pilot.press("Y")
        await until(pilot, lambda: chosen.is_dir() and any(chosen.iterdir()))
        [saved] = list(chosen.iterdir())
        assert saved.name.endswith("-request.httpie.sh")
        assert notes[-1].endswith(f"\n{saved.name}\nin {chosen}/")
    assert list(project.iterdir()) == []


async def test_a_folder_that_cannot_be_written_is_a_warning_and_the_copy_still_happens(project: Path) -> None:
    blocked = project.parent / "a-file"
    blocked.write_text("not a folder")
    app, notes = make_app(export_dir=str(blocked / "exports"))
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed(rows())
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: any("not saved" in n for n in notes))
        assert app.clipboard.startswith("curl --path-as-is")


def test_saved_where_shows_home_as_a_tilde() -> None:
    home = Path("/home/ann")
    assert saved_where(home / ".local/share/devserver/exports/x.har", home) == \
        "x.har\nin ~/.local/share/devserver/exports/"
    assert saved_where(Path("/srv/exports/x.har"), home) == "x.har\nin /srv/exports/"
    assert saved_where(Path("/home/annex/x.har"), home) == "x.har\nin /home/annex/"  # a prefix is not a parent


@pytest.mark.parametrize("value", ["", "notes.txt"])
def test_an_export_dir_that_is_not_a_folder_is_a_one_line_error(tmp_path: Path, value: str) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    result = subprocess.run([sys.executable, "-m", "devserver", "--no-tui", "--export-dir", value], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"devserver: error: --export-dir {value!r} is not a folder "
                                          "(see devserver --help)"]
