"""What a request did inside the app, in memory: statements shown and masked, their shapes, URLs masked, the
recorder's bounds and memory, recorders of concurrent threads and tasks kept apart, and how the console shows it."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import threading
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devserver.console.log import ConsoleLog, inside_summary
from devserver.ipc.control import ArmProfile
from devserver.ipc.events import InsideRecord, OutboundRecord, QueryRecord, RepeatedQuery, RequestEvent
from devserver.probes import profile, recorder, route_of
from devserver.probes.outbound import shown_url
from devserver.probes.recorder import MAX_QUERIES, REPEATED_AT, Recorder, current
from devserver.probes.statements import shape, shown


@pytest.mark.parametrize(("sql", "params", "expected"), [
    ("SELECT * FROM u WHERE name = %s AND password = %s", ["bob", "hunter2"],
     "SELECT * FROM u WHERE name = 'bob' AND password = ********"),
    ("INSERT INTO u (name, api_key) VALUES (?, ?)", ("ann", "k-123"), "INSERT INTO u (name, api_key) VALUES ('ann', ********)"),
    ("UPDATE u SET token = :t WHERE id = :id", {"t": "abc", "id": 3}, "UPDATE u SET token = ******** WHERE id = 3"),
    ("SELECT 1 FROM u WHERE session_key = 'raw-literal' AND id = %(id)s", {"id": 9},
     "SELECT 1 FROM u WHERE session_key = ******** AND id = 9"),
    ("SELECT a::int FROM t WHERE b = %s", [1], "SELECT a::int FROM t WHERE b = 1"),
    ("SELECT\n  1", None, "SELECT 1"),
])
def test_a_statement_is_shown_with_its_parameters_and_secrets_masked(sql: str, params: object, expected: str) -> None:
    assert shown(sql, params) == expected


def test_a_long_parameter_and_a_long_statement_are_shortened() -> None:
    text = shown("SELECT * FROM t WHERE body = %s", ["x" * 10_000])
    assert len(text) < 200 and text.startswith("SELECT * FROM t WHERE body = 'xxx") and "..." in text
    assert len(shown("SELECT " + ", ".join(f"c{n}" for n in range(2000)), None)) == 2000


@pytest.mark.parametrize(("one", "other"), [
    ("SELECT * FROM b WHERE id = %s", "SELECT * FROM b WHERE id = ?"),
    ("SELECT * FROM b WHERE id = 1 AND t = 'x'", "SELECT * FROM b  WHERE id = 22 AND t = 'it''s'"),
    ("SELECT * FROM b WHERE id IN (?, ?)", "SELECT * FROM b WHERE id IN (1, 2, 3, 4)"),
    ("SELECT * FROM b WHERE id = :id", "SELECT * FROM b WHERE id = %(other)s"),
])
def test_statements_differing_only_in_literals_share_a_shape(one: str, other: str) -> None:
    assert shape(one) == shape(other)


def test_different_statements_have_different_shapes() -> None:
    assert shape("SELECT * FROM a WHERE id = 1") != shape("SELECT * FROM b WHERE id = 1")
    assert shape("SELECT * FROM t2 WHERE id = 1") == "SELECT * FROM t2 WHERE id = ?"  # a name's digits stay


@pytest.mark.parametrize(("url", "expected"), [
    ("https://bob:pw@api.example/v1?q=1", "https://bob:********@api.example/v1?q=1"),
    ("http://h/x?token=abc&page=2&api_key=k", "http://h/x?token=********&page=2&api_key=********"),
    ("http://h/x?page=2", "http://h/x?page=2"),
])
def test_an_outbound_url_has_its_credentials_and_secret_values_masked(url: str, expected: str) -> None:
    assert shown_url(url) == expected


def test_the_route_key_is_the_method_and_the_path_without_its_query() -> None:
    assert route_of("GET", "/catalog?page=2") == "GET /catalog"
    assert route_of("POST", "/") == "POST /"
    assert route_of("GET", "http://127.0.0.1:8899/catalog?x=1") == "GET /catalog"  # absolute-form, as a proxy sends
    assert route_of("OPTIONS", "*") == "OPTIONS /"


def _query(rec: Recorder, n: int, source: str = "views.py:3") -> None:
    rec.query("SELECT * FROM t WHERE id = ?", (n,), rec.started, 0.5, 1, source, "sqlite3")


def test_the_recorder_keeps_its_bounds_and_its_memory_after_10000_queries() -> None:
    rec = Recorder("GET /")
    for n in range(1000):
        _query(rec, n)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for n in range(1000, 10_000):
            _query(rec, n)
        grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert grown < 4096, f"the recorder grew by {grown} bytes over 9,000 queries past its bound"
    record = rec.finish()
    assert len(record.queries) == MAX_QUERIES and record.dropped == 10_000 - MAX_QUERIES
    assert record.repeated == (RepeatedQuery("SELECT * FROM t WHERE id = ?", 10_000, 5000.0, "views.py:3"),)
    assert record.queries[7].sql == "SELECT * FROM t WHERE id = 7"


def test_a_shape_is_flagged_from_its_fifth_run_with_the_source_most_runs_came_from() -> None:
    rec = Recorder("GET /")
    for n in range(REPEATED_AT - 1):
        _query(rec, n)
    assert rec.finish().repeated == ()
    rec = Recorder("GET /")
    for n in range(REPEATED_AT + 1):
        _query(rec, n, "views.py:9" if n else "views.py:1")
    (flag,) = rec.finish().repeated
    assert (flag.count, flag.source) == (REPEATED_AT + 1, "views.py:9")


def test_a_finished_recorder_takes_nothing_more() -> None:
    rec = Recorder("GET /")
    token = recorder.CURRENT.set(rec)
    try:
        assert current() is rec
        rec.finish()
        assert current() is None  # a task still running after the response adds nothing to a sent record
    finally:
        recorder.CURRENT.reset(token)


@dataclass
class _Request:
    method: str = "GET"
    target: str = "/"


@dataclass
class _Exchange:
    request: _Request = field(default_factory=_Request)
    recorder: Recorder | None = None


# Run in a process of its own: the hooks replace the libraries' attributes for the rest of the process.
_INSTALL_TWICE = """
import http.client, json, sqlite3, sqlite3.dbapi2
import aiohttp, django.template.base, httpx, jinja2, sqlalchemy
from devserver.ipc.config import Config
from devserver.probes import hooks, patching

libraries = [(owner, name, getattr(owner, name)) for owner, name in [
    (http.client.HTTPConnection, "putrequest"), (sqlite3, "connect"), (jinja2.Template, "render"),
    (httpx.HTTPTransport, "handle_request")]]
off = hooks.install(Config(record_inside=False))
after_off = len(patching.REPLACED)
print(json.dumps({
    "off": off, "after_off": after_off,
    "on": [hooks.install(Config()), hooks.install(Config())],
    "replaced": sorted(f"{getattr(done.owner, '__name__', '?')}.{done.name}" for done in patching.REPLACED),
    "originals": sorted({getattr(done.original, "__module__", None) or "" for done in patching.REPLACED}),
    "not_replaced": [done.name for done in patching.REPLACED if getattr(done.owner, done.name) is done.original],
    "libraries_lost": [name for owner, name, original in libraries
                       if [d.original for d in patching.REPLACED if d.owner is owner and d.name == name] != [original]],
    # SQLAlchemy records at its dialects' DB-API calls: an engine gets no event listener (whose dispatch costs).
    "engine_events": len(sqlalchemy.create_engine("sqlite://").dispatch.before_cursor_execute),
}))
"""


def test_installing_with_recording_off_replaces_nothing_and_installing_twice_replaces_once() -> None:
    ran = subprocess.run([sys.executable, "-c", _INSTALL_TWICE], capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert (seen["off"], seen["after_off"]) == (False, 0)
    assert seen["on"] == [True, True]
    assert seen["replaced"] == sorted([
        "HTTPConnection.putrequest", "HTTPConnection.endheaders", "HTTPConnection.send", "HTTPConnection.getresponse",
        "HTTPTransport.handle_request",
        "AsyncHTTPTransport.handle_async_request", "ClientSession._request", "Template.render",
        "Template.render_async", "Template.render", "sqlite3.connect", "sqlite3.dbapi2.connect",
        "DefaultDialect.do_execute", "DefaultDialect.do_executemany", "DefaultDialect.do_execute_no_params"])  # each once
    assert not any(module.startswith("devserver") for module in seen["originals"])  # never a hook's own wrapper
    assert seen["not_replaced"] == []  # each attribute holds its replacement
    assert seen["libraries_lost"] == []  # what was remembered is the library's own
    assert seen["engine_events"] == 0


# An app module, its engine connected (and its connection pooled) before the hooks exist, as a worker imports it.
_SQLALCHEMY_APP = """
import json, os, sqlite3
from sqlalchemy import create_engine, text
from devserver.ipc.config import Config
from devserver.probes import hooks, recorder

here = os.path.dirname(os.path.abspath(__file__))
early = create_engine("sqlite:///" + os.path.join(here, "early.db"))
with early.begin() as conn:
    conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
hooks.install(Config(app_dir=here))
late = create_engine("sqlite:///" + os.path.join(here, "late.db"))  # its connections made by the hooked driver


class Request:
    method, target = "GET", "/"


class Exchange:
    request, recorder = Request(), None


def view(engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO t (name) VALUES (:name)"), [{"name": "ann"}, {"name": "bob"}])
        conn.execute(text("UPDATE t SET name = 'x' WHERE id > :low"), {"low": 0})
        try:
            conn.exec_driver_sql("SELECT missing FROM t")
        except Exception:
            pass
    with sqlite3.connect(":memory:") as db:  # the app's own DB-API call, beside the engine's
        db.execute("SELECT 1")


found = {}
for name, engine in (("early", early), ("late", late)):
    exchange = Exchange()
    recorder.recorded(exchange, view)(engine)
    found[name] = [[q.sql, q.rows, q.source, q.database, q.error.split(":")[0]]
                   for q in exchange.recorder.finish().queries]
found["events"] = [len(e.dispatch.before_cursor_execute) for e in (early, late)]
print(json.dumps(found))
"""


def _run_app(app: Path, text: str) -> Any:
    """Run ``text`` as the program ``app`` (its hooks installed in a process of its own); what it printed as JSON."""
    app.write_text(text.lstrip())
    ran = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_sqlalchemy_statements_are_recorded_once_each_from_the_app_frame_without_engine_events(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    found = _run_app(app, _SQLALCHEMY_APP)
    line = {text: n for n, text in enumerate(app.read_text().splitlines(), 1)}

    def at(code: str) -> str:
        return "app.py:" + str(next(n for text, n in line.items() if code in text))

    sa = "sqlalchemy:sqlite"
    for name in ("early", "late"):  # the same, whichever connection the pool hands out
        assert found[name] == [
            ["CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)", None, at("CREATE TABLE IF"), sa, ""],
            ["INSERT INTO t (name) VALUES ('ann')", 2, at("INSERT INTO"), sa, ""],  # executemany: its first row
            ["UPDATE t SET name = 'x' WHERE id > 0", 2, at("UPDATE t"), sa, ""],
            ["SELECT missing FROM t", None, at("SELECT missing"), sa, "OperationalError"],
            ["SELECT 1", None, at('db.execute("SELECT 1")'), "sqlite3", ""],
        ], found[name]
    assert found["events"] == [0, 0]


# Calls to a port that refuses (bound, never listening: the kernel answers a connect with a reset), in a recorder.
_REFUSED_CALLS = """
import asyncio, http.client, json, os, socket, sys, urllib.request
import httpx, requests
from devserver.ipc.config import Config
from devserver.probes import hooks, recorder

closed = socket.socket()
closed.bind(("127.0.0.1", 0))
port = closed.getsockname()[1]
base = f"http://user:pw@127.0.0.1:{port}"
hooks.install(Config(app_dir=os.path.dirname(os.path.abspath(__file__))))


class Request:
    method, target = "GET", "/"


class Exchange:
    request, recorder = Request(), None


async def async_httpx():
    async with httpx.AsyncClient() as client:
        await client.get(f"{base}/async?token=s3")


def plain():
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("POST", "/plain", body=b"x")


CALLS = [plain, lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/urllib", timeout=5),
         lambda: requests.get(f"{base}/requests?password=s3", timeout=5), lambda: httpx.get(f"{base}/httpx", timeout=5),
         lambda: asyncio.run(async_httpx())]


def view(_):
    for call in CALLS:
        try:
            call()
        except Exception:
            pass
        else:
            sys.exit("a call to a refusing port succeeded")


exchange = Exchange()
recorder.recorded(exchange, view)(None)
print(json.dumps({"port": port, "calls": [[c.method, c.url, c.status, c.client, c.error.split(":")[0], c.ms >= 0,
                                            c.source.split(":")[0]] for c in exchange.recorder.finish().outbound]}))
"""


def test_a_call_refused_at_connect_is_recorded_with_its_error(tmp_path: Path) -> None:
    seen = _run_app(tmp_path / "app.py", _REFUSED_CALLS)
    calls, port = seen["calls"], seen["port"]
    base = f"http://user:********@127.0.0.1:{port}"
    assert calls == [
        ["POST", f"http://127.0.0.1:{port}/plain", 0, "http.client", "ConnectionRefusedError", True, "app.py"],
        ["GET", f"http://127.0.0.1:{port}/urllib", 0, "http.client", "ConnectionRefusedError", True, "app.py"],
        # urllib3 raises its own error from connect(), and requests sends no credentials in the URL
        ["GET", f"http://127.0.0.1:{port}/requests?password=********", 0, "http.client", "NewConnectionError", True,
         "app.py"],
        ["GET", f"{base}/httpx", 0, "httpx", "ConnectError", True, "app.py"],
        ["GET", f"{base}/async?token=********", 0, "httpx", "ConnectError", True, "app.py"],
    ]


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorders are made, as in a worker with Config.record_inside (no hook installed in this process)."""
    monkeypatch.setattr(recorder, "_on", True)


def test_wsgi_calls_in_concurrent_threads_record_into_their_own_requests(recording: None) -> None:
    exchanges = [_Exchange(_Request(target=f"/{n}")) for n in range(8)]
    barrier = threading.Barrier(len(exchanges))

    def app(n: int) -> None:
        barrier.wait(10)  # all running at once
        for i in range(n + 1):
            rec = current()
            assert rec is not None
            rec.query(f"SELECT {n}", (), rec.started, 0.1, None, "", "sqlite3")
            barrier.wait(10) if i == 0 else None

    threads = [threading.Thread(target=recorder.recorded(exchange, app), args=(n,)) for n, exchange in enumerate(exchanges)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for n, exchange in enumerate(exchanges):
        assert exchange.recorder is not None
        assert [q.sql for q in exchange.recorder.finish().queries] == [f"SELECT {n}"] * (n + 1)
    assert current() is None


def test_asgi_tasks_record_into_the_request_they_were_started_for(recording: None) -> None:
    async def app(n: int) -> None:
        for _ in range(n + 1):
            await asyncio.sleep(0)  # the tasks interleave
            rec = current()
            assert rec is not None
            rec.call(OutboundRecord("GET", f"http://up/{n}", 200, 1.0, 0.0))

    async def main() -> list[_Exchange]:
        exchanges, tasks = [], []
        for n in range(6):
            exchange = _Exchange(_Request(target=f"/{n}"))
            token = recorder.entered(exchange)
            tasks.append(asyncio.get_running_loop().create_task(app(n)))  # copies the context, as start_asgi's does
            recorder.left(token)
            exchanges.append(exchange)
        assert current() is None
        await asyncio.gather(*tasks)
        return exchanges

    for n, exchange in enumerate(asyncio.run(main())):
        assert exchange.recorder is not None
        assert [c.url for c in exchange.recorder.finish().outbound] == [f"http://up/{n}"] * (n + 1)


def test_with_recording_off_the_call_is_the_apps_own_and_no_recorder_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder, "_on", False)  # off whatever an in-process worker of an earlier test switched on
    exchange = _Exchange()

    def run(arg: int) -> int:
        return arg

    assert recorder.recorded(exchange, run) is run
    assert recorder.entered(exchange) is None and exchange.recorder is None


def test_an_armed_route_is_profiled_once_with_its_call_tree(recording: None) -> None:
    profile.arm(ArmProfile("GET /slow"))
    try:
        assert profile.start_if_armed("GET /other") is None
        running = profile.start_if_armed("GET /slow")
        assert running is not None and profile.armed() is None  # this worker profiles one request
        assert profile.start_if_armed("GET /slow") is None

        def spin() -> int:
            return sum(i * i for i in range(300_000))

        spin()
        record = running.record()
    finally:
        profile.arm(ArmProfile(None))
    assert record.route == "GET /slow" and record.samples > 0 and record.nodes[0].depth == 0
    assert all(b.depth <= a.depth + 1 for a, b in zip(record.nodes, record.nodes[1:]))  # depth first
    assert any(n.function == "spin" for n in record.nodes)


INSIDE = InsideRecord(
    12.5,
    queries=tuple(QueryRecord(f"SELECT {n}", 1.5, 0.1, source="views.py:4") for n in range(6)),
    repeated=(RepeatedQuery("SELECT ?", 6, 9.0, "views.py:4"),),
    outbound=(OutboundRecord("GET", "http://up/", 200, 12.0, 3.0),))


def _event(inside: InsideRecord | None) -> RequestEvent:
    return RequestEvent(0.0, 7, "127.0.0.1:5", "GET", "/x", "1.1", 200, 10, 20.0, inside=inside)


def test_the_text_line_counts_queries_and_calls_and_flags_the_n_plus_1() -> None:
    assert inside_summary(INSIDE) == "6 queries 9.0 ms · 1 call 12 ms · N+1: 6 similar queries from views.py:4"
    assert inside_summary(InsideRecord(1.0, queries=(QueryRecord("SELECT 1", 0.25, 0.0),))) == "1 query 0.2 ms"
    stream = io.StringIO()
    log = ConsoleLog(stream, "text")
    log([_event(INSIDE), _event(None), _event(InsideRecord(1.0))])
    log.close()
    lines = stream.getvalue().splitlines()
    assert "6 queries 9.0 ms · 1 call 12 ms · N+1: 6 similar queries from views.py:4" in lines[0]
    assert "quer" not in lines[1] and "quer" not in lines[2]  # nothing recorded, nothing said


def test_the_json_line_carries_queries_calls_and_the_rest_when_present() -> None:
    stream = io.StringIO()
    log = ConsoleLog(stream, "json")
    log([_event(INSIDE), _event(None)])
    log.close()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["queries"][0] == {"sql": "SELECT 0", "ms": 1.5, "started_ms": 0.1, "rows": None,
                                   "source": "views.py:4", "database": "", "error": ""}
    assert first["outbound"] == [{"method": "GET", "url": "http://up/", "status": 200, "ms": 12.0, "started_ms": 3.0,
                                  "bytes_received": 0, "client": "", "source": "", "error": ""}]
    assert first["repeated"][0]["count"] == 6 and first["app_ms"] == 12.5
    assert "templates" not in first and "profile" not in first and "inside" not in first
    assert "queries" not in second and "inside" not in second
