"""What real requests did inside a Flask app, where the user looks for it: the dashboard's Timeline tab (driven by
Pilot over a real supervisor and its workers) and ``devserver requests --json`` (over the running server's
read-only channel).  The app runs an N+1 loop on sqlite3 through SQLAlchemy."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveServer, dashboard_over, until, wait_until
from textual.widgets import DataTable, Static

from devserver.ipc.config import Config
from tui.app import DashboardApp
from tui.screens.detail import DetailScreen

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]

SHOP = '''
import os

from flask import Flask
from sqlalchemy import create_engine, text

engine = create_engine("sqlite:///" + os.path.join(os.path.dirname(__file__), "shop.db"))
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS product (id INTEGER PRIMARY KEY, category INTEGER)"))
app = Flask(__name__)


@app.get("/catalog/<int:count>")
def catalog(count):
    with engine.connect() as conn:
        categories = [row[0] for row in conn.execute(text("SELECT :n FROM product LIMIT 1"), {"n": count})] or [0]
        for category in range(count):
            conn.execute(text("SELECT id FROM product WHERE category = :c"), {"c": category})
    return f"{count} categories"
'''
N_PLUS_ONE_LINE = SHOP.lstrip().splitlines().index('            conn.execute(text("SELECT id FROM product WHERE '
                                                    'category = :c"), {"c": category})') + 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def shop(tmp_path: Path) -> Path:
    (tmp_path / "html_page").mkdir()
    (tmp_path / "shop.py").write_text(SHOP.lstrip())
    return tmp_path


def get(port: int, target: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture
def shop_dashboard(tmp_path: Path) -> Iterator[tuple[DashboardApp, int]]:
    """A dashboard fed by a real supervisor serving the shop with 2 workers, as tui.run starts them."""
    folder = shop(tmp_path)
    config = Config(host="127.0.0.1", port=0, root=str(folder / "html_page"), dynamic=str(folder / "dynamic"),
                    app="shop:app", app_dir=str(folder), workers=2, reload=False, livereload=False).resolved()
    with dashboard_over(config) as running:
        yield running


async def test_the_timeline_tab_lists_a_real_requests_queries_with_their_source_and_the_n_plus_one(
        shop_dashboard: tuple[DashboardApp, int]) -> None:
    app, port = shop_dashboard
    async with app.run_test(size=(80, 24)) as pilot:
        assert get(port, "/catalog/7") == 200
        log = app.main.request_log
        await until(pilot, lambda: len(log.rows) == 1, timeout=30)
        inside = log.rows[0].inside
        assert inside is not None and len(inside.queries) == 8  # the first, then one per category
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await until(pilot, lambda: screen.tab == "timeline")
        table = screen.query_one("#timeline-items", DataTable)
        assert table.row_count == 8
        repeated = str(screen.query_one("#timeline-repeated", Static).content)
        assert repeated.startswith(f"N+1: 7 similar queries from shop.py:{N_PLUS_ONE_LINE}")
        await pilot.press("down")  # the first query of the loop: its statement as run, and where it ran
        shown = str(screen.query_one("#timeline-item", Static).content)
        assert shown.startswith("SELECT id FROM product WHERE category = 0")
        assert shown.endswith(f"from shop.py:{N_PLUS_ONE_LINE}")


def test_devserver_requests_json_carries_each_requests_own_queries(tmp_path: Path) -> None:
    folder = shop(tmp_path)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)}
    server = LiveServer(["shop:app", "--workers", "2", "--log-format", "json"], folder, env).start()
    try:
        assert [get(server.port, f"/catalog/{n}") for n in (2, 5)] == [200, 200]

        def records() -> list[dict[str, object]]:
            done = subprocess.run([sys.executable, "-m", "devserver", "requests", "--json", "--last", "5"], cwd=folder,
                                  env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return [json.loads(line) for line in done.stdout.splitlines()]

        wait_until(lambda: len(records()) == 2)
        by_target = {record["target"]: record for record in records()}
        for n in (2, 5):
            record = by_target[f"/catalog/{n}"]
            queries = record["queries"]
            assert isinstance(queries, list) and len(queries) == n + 1
            assert all(isinstance(q["sql"], str) and isinstance(q["ms"], float) for q in queries)
            assert [q["sql"] for q in queries[1:]] == [f"SELECT id FROM product WHERE category = {c}" for c in range(n)]
        assert by_target["/catalog/5"]["repeated"][0]["count"] == 5  # type: ignore[index]
        assert "repeated" not in by_target["/catalog/2"]  # two of a shape is not an N+1
    finally:
        server.stop()
