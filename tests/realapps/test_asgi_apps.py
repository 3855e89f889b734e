"""Real ASGI apps (FastAPI, Starlette, Litestar, Quart, Django's ASGI handler), served, edited and reloaded live."""

from __future__ import annotations

import http.client
import json
import socket
import textwrap
import time
from pathlib import Path

import pytest
from conftest import LiveServer
from realapp import (
    DEADLINE,
    KeepAliveLoad,
    assert_all_fresh,
    edit,
    get,
    make_django_project,
    start,
    user_env,
    wait_for_body,
)

pytest.importorskip("fastapi")

FASTAPI_APP = '''
import pathlib
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.responses import HTMLResponse

HERE = pathlib.Path(__file__).parent


@asynccontextmanager
async def lifespan(app):
    (HERE / "started.txt").open("a").write("up\\n")
    yield {"greeting": "hello from the lifespan"}
    (HERE / "stopped.txt").open("a").write("down\\n")


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def root():
    return {"version": "v1"}


@app.get("/items/{item_id}")
async def item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}


@app.post("/login")
async def login(name: str = Form(...)):
    return {"name": name}


def note(text):
    (HERE / "background.txt").write_text(text)


@app.post("/later")
async def later(tasks: BackgroundTasks):
    tasks.add_task(note, "ran after the response")
    return {"queued": True}


@app.get("/state")
async def state(request: Request):
    return {"greeting": request.state.greeting}


@app.get("/boom")
async def boom():
    raise RuntimeError("kaboom from the view")


@app.get("/page", response_class=HTMLResponse)
async def page():
    return "<!doctype html><html><body><p>page v1</p></body></html>"


@app.get("/fragment", response_class=HTMLResponse)
async def fragment():
    return "<p>just a fragment</p>"
'''


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return folder


def request(server: LiveServer, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
    try:
        conn.request(method, path, body=body.encode(), headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


def wait_file(path: Path, text: str, count: int = 1) -> str:
    """The text of ``path`` once it holds ``text`` ``count`` times."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count(text) >= count:
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never held {text!r} {count} time(s)")


@pytest.fixture
def fastapi_project(tmp_path: Path) -> Path:
    return write(tmp_path, {"main.py": FASTAPI_APP})


def test_fastapi_json_parameters_form_background_task_and_lifespan_state(fastapi_project: Path) -> None:
    server = start(fastapi_project, "main:app")
    try:
        assert wait_file(fastapi_project / "started.txt", "up", 2).count("up") == 2  # one startup per worker
        status, headers, body = get(server, "/")
        assert (status, headers["content-type"], body) == (200, "application/json", '{"version":"v1"}')
        assert get(server, "/items/42?q=caf%C3%A9")[2] == '{"item_id":42,"q":"café"}'
        assert get(server, "/items/nope")[0] == 422  # FastAPI's own validation answer
        status, _, body = request(server, "POST", "/login", "name=ada",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        assert (status, body) == (200, '{"name":"ada"}')
        assert request(server, "POST", "/later")[2] == '{"queued":true}'
        assert wait_file(fastapi_project / "background.txt", "ran after the response")
        assert get(server, "/state")[2] == '{"greeting":"hello from the lifespan"}'
        server.wait_for(r"GET /items/42\?q=caf%C3%A9 200")  # a row like a WSGI request's
    finally:
        server.stop()
    assert (fastapi_project / "stopped.txt").read_text().count("down") == 2  # each worker's shutdown ran


def test_fastapi_view_error_gets_the_500_page_with_the_apps_traceback(fastapi_project: Path) -> None:
    server = start(fastapi_project, "main:app")
    try:
        status, _, body = get(server, "/boom")
        assert status == 500
        assert "kaboom from the view" in body and "main.py" in body and "raise RuntimeError" in body
        server.wait_for(r"GET /boom 500")
        server.wait_for(r"RuntimeError: kaboom from the view")
        assert get(server, "/")[0] == 200  # the worker lives on
    finally:
        server.stop()


def test_fastapi_html_pages_get_the_live_reload_script_fragments_do_not(fastapi_project: Path) -> None:
    server = start(fastapi_project, "main:app")
    try:
        status, headers, body = get(server, "/page")
        assert status == 200 and 'src="/__devserver__/livereload.js"' in body
        assert headers["content-length"] == str(len(body.encode()))
        assert "livereload.js" not in get(server, "/fragment")[2]
    finally:
        server.stop()


def test_fastapi_edit_under_keep_alive_load_fails_no_request(fastapi_project: Path) -> None:
    server = start(fastapi_project, "main:app")
    try:
        assert get(server, "/")[2] == '{"version":"v1"}'
        with KeepAliveLoad(server, "/", pause=0.005) as load:
            for old, new in (("v1", "v2"), ("v2", "v3"), ("v3", "v4")):
                edit(fastapi_project / "main.py", f'"version": "{old}"', f'"version": "{new}"', server)
                wait_for_body(server, "/", new)
        load.assert_clean()
        assert_all_fresh(server, "/", "v4")
        assert any("v4" in body for _, _, body in load.answers[-3:])
        # The edited app's lifespan: the old one shut down, the new one started, in each worker that served it.
        assert (fastapi_project / "stopped.txt").read_text().count("down") >= 3
        assert get(server, "/state")[2] == '{"greeting":"hello from the lifespan"}'
    finally:
        server.stop()


def test_a_startup_that_raises_is_one_line_and_never_served_as_fine(tmp_path: Path) -> None:
    project = write(tmp_path, {"main.py": '''
        from contextlib import asynccontextmanager
        from fastapi import FastAPI

        @asynccontextmanager
        async def lifespan(app):
            raise RuntimeError("the database is down")
            yield

        app = FastAPI(lifespan=lifespan)

        @app.get("/")
        async def root():
            return {"ok": True}
    '''})
    server = start(project, "main:app")
    try:
        line = server.wait_for(r"lifespan startup of main:app failed")
        assert "RuntimeError: the database is down (main.py:" in line
        status, _, body = get(server, "/")
        assert status == 500 and "lifespan startup failed" in body and "the database is down" in body
        edit(project / "main.py", '    raise RuntimeError("the database is down")\n', "", server)
        wait_for_body(server, "/", '{"ok":true}')
    finally:
        server.stop()


def test_lifespan_off_never_runs_it(fastapi_project: Path) -> None:
    server = start(fastapi_project, "main:app", "--lifespan", "off")
    try:
        assert get(server, "/")[0] == 200
        assert get(server, "/state")[0] == 500  # no state: the view's AttributeError, on devserver's page
        assert not (fastapi_project / "started.txt").exists()
    finally:
        server.stop()


STREAM_APP = '''
import asyncio
import pathlib

from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

HERE = pathlib.Path(__file__).parent


async def numbers(request):
    async def body():
        for n in range(5):
            yield f"line {n}\\n"
            await asyncio.sleep(0)
    return StreamingResponse(body(), media_type="text/plain")


routes = [Route("/numbers", numbers)]
app = Starlette(routes=routes)


async def forever(scope, receive, send):
    """A raw ASGI app streaming until the client goes, which it learns from http.disconnect."""
    if scope["type"] != "http":
        return
    await receive()  # the request (no body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first\\n", "more_body": True})
    message = await receive()
    (HERE / "disconnect.txt").write_text(message["type"])
'''


def test_starlette_streaming_response_is_sent_chunked_as_it_comes(tmp_path: Path) -> None:
    project = write(tmp_path, {"stream.py": STREAM_APP})
    server = start(project, "stream:app")
    try:
        status, headers, body = get(server, "/numbers")
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == "".join(f"line {n}\n" for n in range(5))
    finally:
        server.stop()


def test_a_client_that_vanishes_mid_stream_gives_the_app_http_disconnect(tmp_path: Path) -> None:
    project = write(tmp_path, {"stream.py": STREAM_APP})
    server = start(project, "stream:forever")
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b"first" not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        sock.close()
        assert wait_file(project / "disconnect.txt", "http.disconnect")
        server.wait_for(r"GET / 200")  # the row of the stream, ended when the client went
    finally:
        server.stop()


def test_litestar_app_is_served_and_reloaded(tmp_path: Path) -> None:
    pytest.importorskip("litestar")
    project = write(tmp_path, {"app.py": '''
        from litestar import Litestar, get

        @get("/hello/{name:str}")
        async def hello(name: str) -> dict[str, str]:
            return {"hello": name, "from": "litestar v1"}

        app = Litestar([hello])
    '''})
    server = start(project, "app:app")
    try:
        assert get(server, "/hello/ada")[2] == '{"hello":"ada","from":"litestar v1"}'
        edit(project / "app.py", "litestar v1", "litestar v2", server)
        wait_for_body(server, "/hello/ada", "litestar v2")
        assert_all_fresh(server, "/hello/ada", "litestar v2")
    finally:
        server.stop()


def test_quart_app_form_and_error_page(tmp_path: Path) -> None:
    pytest.importorskip("quart")
    project = write(tmp_path, {"app.py": '''
        from quart import Quart, request

        app = Quart(__name__)

        @app.post("/form")
        async def form():
            data = await request.form
            return {"name": data["name"], "v": "quart v1"}

        @app.get("/boom")
        async def boom():
            raise ValueError("quart view failed")
    '''})
    server = start(project, "app:app")
    try:
        status, _, body = request(server, "POST", "/form", "name=ada",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        assert (status, body.strip()) == (200, '{"name":"ada","v":"quart v1"}')
        status, _, body = get(server, "/boom")
        assert status == 500 and "quart view failed" in body and "app.py" in body  # devserver's page, not Quart's
        edit(project / "app.py", "quart v1", "quart v2", server)
        deadline = time.monotonic() + DEADLINE
        while "quart v2" not in request(server, "POST", "/form", "name=ada",
                                        {"Content-Type": "application/x-www-form-urlencoded"})[2]:
            assert time.monotonic() < deadline, "the edit never reached the app"
    finally:
        server.stop()


def test_django_asgi_application_is_served_and_reloaded(tmp_path: Path) -> None:
    project = make_django_project(tmp_path, "mysite", "polls", {
        "polls/views.py": '''
            from django.http import HttpResponse

            def index(request):
                return HttpResponse("<!doctype html><html><body>polls v1 " + request.path + "</body></html>")
        ''',
        "polls/urls.py": '''
            from django.urls import path
            from . import views

            urlpatterns = [path("", views.index)]
        ''',
    })
    for name in ("polls/views.py", "polls/urls.py"):
        (project / name).write_text(textwrap.dedent((project / name).read_text()))
    server = start(project, "mysite.asgi:application")
    try:
        status, _, body = get(server, "/polls/")
        assert status == 200 and "polls v1 /polls/" in body
        assert 'src="/__devserver__/livereload.js"' in body  # a full page from an ASGI app gets live reload
        edit(project / "polls/views.py", "polls v1", "polls v2", server)
        wait_for_body(server, "/polls/", "polls v2")
        assert_all_fresh(server, "/polls/", "polls v2")
    finally:
        server.stop()


@pytest.mark.parametrize("layout", ["main.py", "app/main.py"])
def test_discovery_serves_the_folders_app_and_never_its_source(tmp_path: Path, layout: str) -> None:
    write(tmp_path, {layout: '''
        from fastapi import FastAPI

        api = FastAPI()

        @api.get("/")
        async def root():
            return {"found": True}
    '''})
    module = layout[:-3].replace("/", ".")
    server = LiveServer(["--workers", "2"], tmp_path, user_env()).start(timeout=DEADLINE)
    try:
        line = server.wait_for(r"no APP given")
        assert f"serving {module}:api, found in {layout}" in line and "devserver module:name" in line
        assert get(server, "/")[2] == '{"found":true}'
        status, _, body = get(server, "/" + layout)
        assert status == 404 and "FastAPI()" not in body
    finally:
        server.stop()


def test_discovery_leaves_a_folder_without_an_app_served_as_files(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": 'print("a script, not an app")\n', "index.html": "<p>the site</p>\n"})
    server = LiveServer(["--workers", "1"], tmp_path, user_env()).start(timeout=DEADLINE)
    try:
        assert "the site" in get(server, "/")[2]
        assert not any("no APP given" in line for line in server.lines)
    finally:
        server.stop()


def test_asgi_requests_are_json_rows_with_bodies_timing_traceback_and_printed_lines(tmp_path: Path) -> None:
    project = write(tmp_path, {"main.py": FASTAPI_APP + '''

@app.post("/echo")
async def echo(request: Request):
    print("echo was called")
    return {"got": (await request.body()).decode()}
'''})
    server = start(project, "main:app", "--log-format", "json")
    try:
        assert request(server, "POST", "/echo", "hello body")[2] == '{"got":"hello body"}'
        assert get(server, "/boom")[0] == 500
        deadline = time.monotonic() + DEADLINE
        while True:
            records = [json.loads(line) for line in list(server.lines) if line.startswith("{")]
            rows = {r["target"]: r for r in records if r["type"] == "RequestEvent"}
            if "/echo" in rows and "/boom" in rows:
                break
            assert time.monotonic() < deadline, "the requests were never logged"
            time.sleep(0.05)
        echo, boom = rows["/echo"], rows["/boom"]
        assert (echo["method"], echo["status"], echo["body_preview"]) == ("POST", 200, "hello body")
        assert echo["duration_ms"] > 0 and echo["logs"] == ["echo was called"]
        assert ("content-type", "application/json") in [tuple(h) for h in echo["response_headers"]]
        assert boom["status"] == 500 and "RuntimeError: kaboom from the view" in boom["traceback"]
        assert boom["error_report"]["frames"][-1]["function"] == "boom"  # the view's frame, for the dashboard
    finally:
        server.stop()
