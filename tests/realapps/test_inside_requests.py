"""What each request did inside the app (SQL, outbound calls, templates, a profile), recorded by the worker that
served it: a Flask + SQLAlchemy app calling out with requests and httpx, and a Django project with an N+1 loop,
a template and a urllib call, each served by 2 workers with JSON lines; concurrent requests never mix."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import LiveServer, wait_until
from realapp import DEADLINE, make_django_project, user_env

from devserver.ipc.config import Config
from devserver.ipc.events import Event, RequestEvent
from devserver.supervisor.core import Supervisor


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"upstream {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    """A local HTTP service the apps call during their requests."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


FLASK_APP = '''
import os
import sqlite3

import httpx
import requests
from flask import Flask, render_template, request
from sqlalchemy import create_engine, text

UPSTREAM = os.environ["UPSTREAM"]
engine = create_engine("sqlite:///" + os.path.join(os.path.dirname(__file__), "shop.db"))
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, password TEXT)"))
app = Flask(__name__)


@app.get("/items")
def items():
    marker = request.args["m"]
    count = int(request.args["n"])
    with engine.connect() as conn:
        for i in range(count):
            conn.execute(text("SELECT :m AS m, :i AS i WHERE :pw = :pw"), {"m": marker, "i": i, "pw": "x"})
        conn.execute(text("UPDATE users SET password = :new WHERE id = :id"), {"new": "hunter2", "id": 7})
    requests.get(f"{UPSTREAM}/requests?m={marker}&token=s3cr3t", timeout=10)
    httpx.get(f"{UPSTREAM}/httpx?m={marker}", timeout=10)
    return render_template("items.html", marker=marker)


@app.get("/many")
def many():
    db = sqlite3.connect(":memory:")
    for i in range(int(request.args["n"])):
        db.execute("SELECT ?", (i,))
    return "done"


@app.get("/hooked")
def hooked():
    return sqlite3.connect.__module__
'''


def _flask_project(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "app.py").write_text(FLASK_APP.lstrip())
    (root / "templates" / "items.html").write_text("<p>{{ marker }}</p>\n")
    return root


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _serve(project: Path, upstream: str, *args: str) -> LiveServer:
    env = user_env() | {"UPSTREAM": upstream}
    return LiveServer(["--workers", "2", "--log-format", "json", *args], project, env).start(timeout=DEADLINE)


def _requests_of(server: LiveServer, count: int) -> list[dict[str, Any]]:
    def logged() -> list[dict[str, Any]]:
        records = [json.loads(line) for line in list(server.lines) if line.startswith("{")]
        return [r for r in records if r["type"] == "RequestEvent"]

    return wait_until(lambda: (found := logged()) and len(found) >= count and found, DEADLINE,
                      lambda: f"{count} request lines; log:\n" + "\n".join(server.lines[-20:]))


def _fire(server: LiveServer, paths: list[str]) -> list[str]:
    """GET every path from 6 threads, each with a keep-alive session as a browser would."""
    local = threading.local()

    def get(path: str) -> str:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.get(f"http://127.0.0.1:{server.port}{path}", timeout=DEADLINE)
        assert response.status_code == 200, response.text
        return response.text

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(get, paths))


def test_flask_sqlalchemy_requests_record_their_own_queries_calls_and_templates(tmp_path: Path, upstream: str) -> None:
    project = _flask_project(tmp_path / "shop")
    server = _serve(project, upstream)
    try:
        markers = {f"m{k}": 5 + k % 4 for k in range(16)}  # a different count each: a mix shows
        bodies = _fire(server, [f"/items?m={m}&n={n}" for m, n in markers.items()])
        assert sorted(bodies) == sorted(f"<p>{m}</p>" for m in markers)
        lines = _requests_of(server, len(markers))
    finally:
        server.stop()
    loop_line = _line_of(project / "app.py", 'conn.execute(text("SELECT :m')
    assert len({line["worker_pid"] for line in lines}) >= 1
    for line in lines:
        marker = line["target"].split("m=")[1].split("&")[0]
        sql = [q["sql"] for q in line["queries"]]
        looped = [q for q in line["queries"] if q["sql"].startswith("SELECT '")]
        assert [q["sql"] for q in looped] == [f"SELECT '{marker}' AS m, {i} AS i WHERE 'x' = 'x'"
                                              for i in range(markers[marker])], sql
        assert all(q["source"] == f"app.py:{loop_line}" and q["database"] == "sqlalchemy:sqlite" and q["ms"] >= 0
                   for q in looped)
        assert "UPDATE users SET password = ******** WHERE id = 7" in sql  # the value of a secret column, masked
        assert not [s for s in sql if "hunter2" in s]
        assert line["repeated"] == [{"shape": "SELECT ? AS m, ? AS i WHERE ? = ?", "count": markers[marker],
                                     "ms": pytest.approx(sum(q["ms"] for q in looped), abs=0.01),
                                     "source": f"app.py:{loop_line}"}]
        calls = line["outbound"]
        assert [(c["method"], c["client"], c["status"]) for c in calls] == [("GET", "http.client", 200),
                                                                           ("GET", "httpx", 200)]
        assert calls[0]["url"] == f"{upstream}/requests?m={marker}&token=********"
        assert calls[1]["url"] == f"{upstream}/httpx?m={marker}"
        assert calls[0]["bytes_received"] == len(f"upstream /requests?m={marker}&token=s3cr3t")
        assert [(t["name"], t["engine"]) for t in line["templates"]] == [("items.html", "jinja2")]
        assert line["app_ms"] <= line["duration_ms"]
        assert line["app_ms"] >= sum(q["ms"] for q in line["queries"]) + sum(c["ms"] for c in calls)


def test_recording_is_bounded_per_request_and_off_for_the_plain_console(tmp_path: Path, upstream: str) -> None:
    project = _flask_project(tmp_path / "shop")
    server = _serve(project, upstream)
    try:
        assert _fire(server, ["/many?n=10000", "/hooked"]) == ["done", "devserver.probes.sql"]
        line = next(r for r in _requests_of(server, 2) if r["target"].startswith("/many"))
    finally:
        server.stop()
    assert len(line["queries"]) == 200 and line["dropped"] == 9800
    assert [q["sql"] for q in line["queries"][:2]] == ["SELECT 0", "SELECT 1"]
    assert [(r["shape"], r["count"]) for r in line["repeated"]] == [("SELECT ?", 10000)]
    plain = LiveServer(["--workers", "2"], project, user_env() | {"UPSTREAM": upstream}).start(timeout=DEADLINE)
    try:  # --no-tui without --log-format json: nobody looks, no hook is installed
        assert _fire(plain, ["/hooked", "/hooked"]) == ["_sqlite3", "_sqlite3"]  # the driver's own connect()
    finally:
        plain.stop()


def test_an_armed_route_is_profiled_once_in_whichever_worker_serves_it(tmp_path: Path, upstream: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    project = _flask_project(tmp_path / "shop")
    monkeypatch.setenv("UPSTREAM", upstream)
    events: list[Event] = []
    config = Config(host="127.0.0.1", port=0, root=str(project), dynamic=str(project), app="app:app",
                    app_dir=str(project), workers=2, tui=False, reload=False, livereload=False).resolved()
    supervisor = Supervisor(config, sink=events.extend)
    supervisor.start()

    def served(path: str) -> RequestEvent:
        seen = len([e for e in list(events) if isinstance(e, RequestEvent)])
        assert requests.get(f"http://127.0.0.1:{supervisor.config.port}{path}", timeout=DEADLINE).status_code == 200
        return wait_until(lambda: [e for e in list(events) if isinstance(e, RequestEvent)][seen:] and
                          [e for e in list(events) if isinstance(e, RequestEvent)][seen], DEADLINE, f"{path} logged")

    try:
        supervisor.arm_profile("GET /items")
        other = served("/hooked")
        profiled = served("/items?m=p1&n=5")
        wait_until(lambda: supervisor.armed_route is None, DEADLINE, "the supervisor disarmed")
        after = [served("/items?m=p2&n=5") for _ in range(4)]
    finally:
        supervisor.stop()
    assert other.inside is not None and other.inside.profile is None
    assert profiled.inside is not None and profiled.inside.profile is not None
    profile = profiled.inside.profile
    assert profile.route == "GET /items" and profile.samples > 0
    assert profile.nodes[0].depth == 0 and len(profile.nodes) <= 300
    assert any(node.function == "items" and node.location.startswith("app.py:") and node.app for node in profile.nodes)
    assert all(e.inside is not None and e.inside.profile is None for e in after)  # every worker was disarmed


ASGI_APP = '''
import asyncio
import os
import sqlite3

import aiohttp
import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

UPSTREAM = os.environ["UPSTREAM"]


async def calls(request):
    marker = request.query_params["m"]
    db = sqlite3.connect(":memory:")
    db.execute("SELECT ?", (marker,))
    async with httpx.AsyncClient() as client:
        await client.get(f"{UPSTREAM}/httpx?m={marker}")
    await asyncio.sleep(0.01)  # the other requests' tasks run meanwhile
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{UPSTREAM}/aiohttp?m={marker}") as answer:
            await answer.read()
    db.execute("SELECT ?", (marker,))
    return PlainTextResponse(marker)


app = Starlette(routes=[Route("/calls", calls)])
'''


def test_asgi_requests_in_concurrent_tasks_record_their_own_async_calls(tmp_path: Path, upstream: str) -> None:
    project = tmp_path / "svc"
    project.mkdir()
    (project / "svc.py").write_text(ASGI_APP.lstrip())
    server = _serve(project, upstream, "svc:app")
    try:
        markers = [f"a{k}" for k in range(12)]
        assert _fire(server, [f"/calls?m={m}" for m in markers]) == markers
        lines = _requests_of(server, len(markers))
    finally:
        server.stop()
    executes = [n for n, text in enumerate((project / "svc.py").read_text().splitlines(), 1) if "db.execute(" in text]
    for line in lines:
        marker = line["target"].split("m=")[1]
        assert [(q["sql"], q["database"], q["source"]) for q in line["queries"]] == [
            (f"SELECT '{marker}'", "sqlite3", f"svc.py:{n}") for n in executes]
        assert [(c["client"], c["url"], c["status"]) for c in line["outbound"]] == [
            ("httpx", f"{upstream}/httpx?m={marker}", 200), ("aiohttp", f"{upstream}/aiohttp?m={marker}", 200)]


DJANGO_FILES = {
    "catalog/models.py": '''
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=50)


class Book(models.Model):
    title = models.CharField(max_length=50)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
''',
    "catalog/views.py": '''
import os
import urllib.request

from django.shortcuts import render

from catalog.models import Author, Book


def books(request):
    marker = request.GET["m"]
    mine = Author.objects.filter(name=marker).count()
    rows = [(book.title, book.author.name) for book in Book.objects.all()]
    with urllib.request.urlopen(f"{os.environ['UPSTREAM']}/urllib?m={marker}", timeout=10) as answer:
        called = answer.read().decode()
    return render(request, "catalog/books.html", {"rows": rows, "mine": mine, "called": called})
''',
    "catalog/urls.py": '''
from django.urls import path

from catalog import views

urlpatterns = [path("books/", views.books)]
''',
    "catalog/templates/catalog/books.html": '''
{% for title, author in rows %}<li>{{ title }} by {{ author }}</li>{% endfor %} {{ mine }} {{ called }}
''',
}


def test_django_requests_record_their_orm_queries_n_plus_one_template_and_urllib_call(tmp_path: Path,
                                                                                        upstream: str) -> None:
    (tmp_path / "site").mkdir()
    root = make_django_project(tmp_path / "site", "site_project", "catalog", DJANGO_FILES)
    env = user_env()
    for command in (["makemigrations", "catalog"], ["migrate", "-v0"],
                    ["shell", "-c", "from catalog.models import Author, Book\n"
                                    "for n in range(6): Book.objects.create(title=f't{n}', "
                                    "author=Author.objects.create(name=f'a{n}'))"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=root, env=env, check=True, capture_output=True)
    server = _serve(root, upstream, "site_project.wsgi:application")
    try:
        markers = [f"d{k}" for k in range(10)]
        bodies = _fire(server, [f"/catalog/books/?m={m}" for m in markers])
        assert all("t5 by a5" in body and f"upstream /urllib?m={m}" in body for body, m in zip(bodies, markers))
        lines = _requests_of(server, len(markers))
    finally:
        server.stop()
    views = root / "catalog" / "views.py"
    loop = f"catalog/views.py:{_line_of(views, 'for book in Book.objects.all()')}"
    for line in lines:
        marker = line["target"].split("m=")[1]
        queries = line["queries"]
        assert len(queries) == 1 + 1 + 6, [q["sql"] for q in queries]  # once each: sqlite3's own hook stays out
        assert all(q["database"] == "django:default" for q in queries)
        assert queries[0]["sql"].endswith(f"WHERE \"catalog_author\".\"name\" = '{marker}'")
        assert queries[0]["source"] == f"catalog/views.py:{_line_of(views, 'mine = ')}"
        assert [q["source"] for q in queries[1:]] == [loop] * 7
        (repeated,) = line["repeated"]
        assert repeated["count"] == 6 and repeated["source"] == loop and "WHERE \"catalog_author\".\"id\" = ?" in repeated["shape"]
        assert [(c["method"], c["url"], c["status"], c["client"]) for c in line["outbound"]] == [
            ("GET", f"{upstream}/urllib?m={marker}", 200, "http.client")]
        assert [(t["name"], t["engine"]) for t in line["templates"]] == [("catalog/books.html", "django")]
    assert not re.search(r"'d\d'", json.dumps([q for line in lines for q in line["queries"][1:]]))
