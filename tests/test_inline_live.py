"""Inline WSGI calls on a real server (worker/inline.py): which calls run on the loop, and that they answer as in
the pool.

The apps say which thread ran them (``MainThread``: the worker's loop; ``wsgi-N``: a pool thread), so each test
sees where its calls ran.  Tests of the policy itself run with its record; those of what an app sees inline run
with ``DEVSERVER_INLINE=always``, so a busy machine that makes every call slow cannot keep them in the pool.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import textwrap
from pathlib import Path

import pytest
from conftest import LiveServer, wait_until

ROUTE_APP = '''\
"""/route.py/work is quick until /route.py/slow; then it sleeps on the loop, and in the pool waits for /route.py/release."""

import threading
import time

slow = threading.Event()
released = threading.Event()


def application(environ, start_response):
    path = environ["PATH_INFO"]
    thread = threading.current_thread()
    if path == "/slow":
        slow.set()
    elif path == "/release":
        released.set()
    elif path == "/work" and slow.is_set():
        if thread is threading.main_thread():
            time.sleep(0.1)  # inline, this holds every connection of the worker up: it must be the only such call
        else:
            released.wait(60)
            time.sleep(0.05)  # slow in the pool too, whatever the wait was: the route is slow
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{thread.name} released={released.is_set()}".encode()]
'''

FAIL_APP = '''\
def application(environ, start_response):
    import threading

    if environ["QUERY_STRING"] == "boom":
        return broken(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [threading.current_thread().name.encode()]


def broken(environ):
    return 1 / len(environ["QUERY_STRING"].replace("boom", ""))
'''

FLASK_APP = '''\
import asyncio
import sqlite3
import threading

from asgiref.sync import async_to_sync
from flask import Flask, g, request

app = Flask(__name__)
local = threading.local()


@app.before_request
def remember():
    local.n = g.n = request.args["n"]


async def doubled(n):
    return 2 * n


@app.route("/n")
def show():
    try:
        asyncio.get_running_loop()
        loop = "running"
    except RuntimeError:
        loop = "none"
    n = request.args["n"]
    (queried,) = sqlite3.connect(":memory:").execute("SELECT ? + 0", (int(n),)).fetchone()
    return (f"{threading.current_thread().name} n={n} local={local.n} g={g.n} loop={loop} "
            f"async={async_to_sync(doubled)(int(n))} queried={queried}")
'''


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def inline_after_quick_calls(conn: http.client.HTTPConnection, path: str) -> list[str]:
    """Call ``path`` until a call runs on the loop; the answers, the pool's first (a slow call on a busy machine
    starts the count over, so the calls it takes are not counted here)."""
    answers: list[str] = []

    def ran_inline() -> bool:
        answers.append(get(conn, path)[1])
        return "MainThread" in answers[-1]

    wait_until(ran_inline, 60, lambda: f"{path} never ran inline: {answers[-5:]}")
    return answers


@pytest.fixture
def dynamic_server(server_factory, site: Path) -> LiveServer:
    (site / "dynamic" / "route.py").write_text(ROUTE_APP)
    (site / "dynamic" / "fail.py").write_text(FAIL_APP)
    return server_factory("--workers", "1", "--no-reload")


def test_a_quick_route_runs_on_the_loop_and_one_that_turns_slow_holds_others_up_once_then_stays_in_the_pool(
        dynamic_server: LiveServer) -> None:
    a = http.client.HTTPConnection("127.0.0.1", dynamic_server.port, timeout=60)
    b = http.client.HTTPConnection("127.0.0.1", dynamic_server.port, timeout=60)
    answers = inline_after_quick_calls(a, "/route.py/work")
    assert re.match(r"wsgi-\d+ ", answers[0])  # a route starts in the pool
    assert get(b, "/route.py/slow")[0] == 200
    assert get(a, "/route.py/work")[1] == "MainThread released=False"  # the one slow call on the loop
    a.request("GET", "/route.py/work")  # the check, in the pool: it waits there for /release, the loop serves the rest
    status, other = get(b, "/route.py/other")  # another connection, answered while that call waits
    assert status == 200 and other.endswith("released=False")
    assert get(b, "/route.py/release")[0] == 200
    response = a.getresponse()
    assert re.fullmatch(r"wsgi-\d+ released=True", response.read().decode())
    assert re.fullmatch(r"wsgi-\d+ released=True", get(a, "/route.py/work")[1])  # slow there too: it stays


def test_an_app_failing_inline_answers_the_500_page_it_answers_from_the_pool(dynamic_server: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", dynamic_server.port, timeout=60)
    status, in_pool = get(conn, "/fail.py?boom")
    assert status == 500
    inline_after_quick_calls(conn, "/fail.py")
    status, on_loop = get(conn, "/fail.py?boom")
    assert status == 500
    assert get(conn, "/fail.py")[1] == "MainThread"  # a quick failure keeps the route on the loop

    def frames(page: str) -> list[tuple[str, ...]]:
        text = re.sub(r"<[^>]*>", " ", page)
        return re.findall(r"(\S+\.py)\s*, line (\d+), in\s+(\w+)", text) + re.findall(r"\d+ server frames? folded", text)

    assert frames(on_loop) == frames(in_pool)
    assert [frame[2] for frame in frames(on_loop)[:2]] == ["broken", "application"]
    assert "ZeroDivisionError: division by zero" in on_loop and "devserver/" not in on_loop


def test_pipelined_requests_to_an_inline_route_take_one_turn_of_the_loop_each_inline_the_rest_in_the_pool(
        dynamic_server: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", dynamic_server.port, timeout=60)
    inline_after_quick_calls(conn, "/fail.py")
    sock = dynamic_server.connect()
    sock.sendall(b"".join(b"GET /fail.py?%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % i for i in range(30)))
    received = b""
    while received.count(b"HTTP/1.1 200") < 30:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    sock.close()
    threads = re.findall(rb"\r\n\r\n(MainThread|wsgi-\d+)", received)
    assert len(threads) == 30 and threads[0] == b"MainThread"  # read in one turn: the first inline, the next pooled
    assert threads[1] != b"MainThread"


@pytest.fixture
def flask_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(textwrap.dedent(FLASK_APP))
    return project


def test_a_flask_app_inline_sees_its_own_request_thread_locals_no_running_loop_and_its_own_queries(
        flask_project: Path) -> None:
    env = dict(os.environ, DEVSERVER_INLINE="always")
    server = LiveServer(["app:app", "--workers", "1", "--log-format", "json", "--no-reload"], flask_project, env)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        for n in range(20):
            assert get(conn, f"/n?n={n}") == (200, f"MainThread n={n} local={n} g={n} loop=none async={2 * n} "
                                                   f"queried={n}")
        def logged() -> list[dict[str, object]]:
            records = [json.loads(line) for line in list(server.lines) if line.startswith("{")]
            return [record for record in records if record["type"] == "RequestEvent"]

        lines = wait_until(lambda: (found := logged()) and len(found) >= 20 and found, 30, "the 20 request lines")
    finally:
        server.stop()
    queries = {line["target"]: [q["sql"] for q in line["queries"]] for line in lines}  # type: ignore[index, union-attr]
    assert queries == {f"/n?n={n}": [f"SELECT {n} + 0"] for n in range(20)}


WHO_APP = '''\
import threading


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("VERSION " + threading.current_thread().name).encode()]
'''


def test_a_reloaded_app_starts_its_routes_over_in_the_pool(server_factory, site: Path) -> None:
    from realapps.realapp import user_env

    who = site / "dynamic" / "who.py"
    who.write_text(WHO_APP.replace("VERSION", "v1"))
    server = server_factory("--workers", "1", env=user_env())
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    assert inline_after_quick_calls(conn, "/who.py")[-1] == "v1 MainThread"
    who.write_text(WHO_APP.replace("VERSION", "v2"))
    first = wait_until(lambda: (answer := get(conn, "/who.py")[1]).startswith("v2") and answer, 30, "the new code")
    assert re.fullmatch(r"v2 wsgi-\d+", first)
