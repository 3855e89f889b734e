"""Live reload: the injected script, the Server-Sent Events stream, and a real browser.

The browser tests drive headless Chromium over the DevTools protocol (see
``chromium.py``); the browser-side loop (many tabs, error pages, the overlay,
scroll, images) is tested in ``test_browser_loop.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import Page, browser_fixture, needs_chromium, page_fixture  # noqa: F401 - fixtures
from conftest import FIXTURE_APPS, LiveServer, http_get

from devserver.handlers.jscompact import compact
from devserver.handlers.livereload import SCRIPT_TAG, inject
from devserver.ipc.config import Config
from devserver.ipc.control import PageChanged
from devserver.reload.watcher import ImportGraph, Watcher

EVENTS = "/__devserver__/events"


def users_env() -> dict[str, str]:
    """The environment of a user's machine: bytecode is written (this one sets PYTHONDONTWRITEBYTECODE)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


get = http_get


class EventStream:
    """A minimal EventSource: reads ``event:``/``data:`` fields, skips comments."""

    def __init__(self, server, timeout: float = 10.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        self.conn.request("GET", EVENTS, headers={"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        self.comments: list[str] = []
        self.retry: str | None = None

    def next_event(self) -> tuple[str, object]:
        """The next dispatched event as (name, decoded JSON data)."""
        name, data = "message", []
        while True:
            raw = self.response.readline()
            if not raw:
                raise EOFError("the event stream ended")
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data:
                    return name, json.loads("\n".join(data))
                name = "message"
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "retry":
                self.retry = value

    def close(self) -> None:
        self.conn.close()


def test_inject_before_body_end_or_at_the_end() -> None:
    assert inject(b"<html><body><p>x</p></BODY></html>") == b"<html><body><p>x</p>" + SCRIPT_TAG + b"</BODY></html>"
    assert inject(b"<!DOCTYPE html><title>t</title><p>x") == b"<!DOCTYPE html><title>t</title><p>x" + SCRIPT_TAG


@pytest.mark.parametrize("fragment", [b"<p>fragment</p>", b"<tr><td>htmx row</td></tr>", b"plain text", b"",
                                      b"<htmlish>not a document</htmlish>"])
def test_fragments_are_never_injected(fragment: bytes) -> None:
    assert inject(fragment) == fragment


def test_html_pages_get_the_script(server_factory) -> None:
    server = server_factory("--workers", "1")
    status, headers, body = get(server, "/index.html")
    assert status == 200 and b"fixture index" in body
    assert body.count(SCRIPT_TAG) == 1 and body.index(SCRIPT_TAG) < body.index(b"</body>")
    assert int(headers["content-length"]) == len(body)
    status, headers, script = get(server, "/__devserver__/livereload.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"EventSource" in script and EVENTS.encode() in script
    status, _, body = get(server, "/one_k.txt")
    assert status == 200 and body == b"x" * 1024  # only HTML is touched
    assert get(server, "/__devserver__/nothing")[0] == 404


def test_no_livereload_serves_pages_untouched(server_factory, site: Path) -> None:
    server = server_factory("--workers", "1", "--no-livereload")
    status, _, body = get(server, "/index.html")
    assert status == 200 and body == (site / "html_page" / "index.html").read_bytes()
    assert get(server, EVENTS)[0] == 404
    status, _, body = get(server, "/missing.html")
    assert status == 404 and b"<script" not in body  # error pages too


def test_stream_sends_reload_and_css_events(server_factory, site: Path) -> None:
    root = site / "html_page"
    (root / "css").mkdir()
    (root / "css" / "style.css").write_text("h1 { color: red; }\n")
    server = server_factory("--workers", "2", env=users_env())
    stream = EventStream(server)
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        assert stream.response.getheader("Cache-Control") == "no-cache"

        name, hello = stream.next_event()
        assert name == "hello" and hello["instance"]

        (root / ".index.html.swp").write_text("editor noise")  # ignored: the next event is the edit
        (root / "index.html").write_text("<html><body><h1>edited</h1></body></html>\n")
        assert stream.next_event() == ("reload", ["/index.html"])
        assert stream.retry is not None and int(stream.retry) > 0

        (root / "css" / "style.css").write_text("h1 { color: blue; }\n")
        assert stream.next_event() == ("css", ["/css/style.css"])

        (site / "dynamic" / "newapp.py").write_text("def application():\n    return 'hi'\n")
        assert stream.next_event() == ("reload", ["/newapp.py"])
    finally:
        stream.close()


def test_every_worker_names_the_same_server_run_and_a_new_run_another(server_factory) -> None:
    server = server_factory("--workers", "2")
    streams = [EventStream(server) for _ in range(4)]  # spread over both workers by the kernel
    try:
        instances = {stream.next_event()[1]["instance"] for stream in streams}
    finally:
        for stream in streams:
            stream.close()
    assert len(instances) == 1
    server.stop()
    again = server_factory("--workers", "1", "--port", str(server.port))
    stream = EventStream(again)
    try:
        assert stream.next_event()[1]["instance"] not in instances
    finally:
        stream.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the tests that only read: an HTML app, a module that fails to import."""
    base = tmp_path_factory.mktemp("site")
    (base / "html_page").mkdir()
    (base / "html_page" / "index.html").write_text("<!DOCTYPE html><html><body><h1>index</h1></body></html>\n")
    (base / "html_page" / "one_k.txt").write_bytes(b"x" * 1024)
    dynamic = base / "dynamic"
    dynamic.mkdir()
    (dynamic / "boom.py").write_text((FIXTURE_APPS / "boom.py").read_text())
    (dynamic / "broken_import.py").write_text("import no_such_module_anywhere\n")
    (dynamic / "htmlpage.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/html')])\n"
        "    return [b'<html><body><p>from an app</p></body></html>']\n")
    server = LiveServer(["--workers", "1"], base).start()
    try:
        yield server
    finally:
        server.stop()


def test_server_pages_carry_the_script_marked_as_error_pages(shared: LiveServer) -> None:
    server = shared
    for path, status in (("/missing.html", 404), ("/boom.py", 500), ("/broken_import.py", 500), ("/nomodule.py", 404)):
        got, headers, body = get(server, path)
        assert got == status and headers["content-type"].startswith("text/html")
        assert body.count(b'<script src="/__devserver__/livereload.js" data-page="error"></script></body>') == 1, path


def test_app_pages_are_marked_as_app_pages(shared: LiveServer) -> None:
    server = shared
    status, _, body = get(server, "/htmlpage.py")
    assert status == 200 and b'<p>from an app</p><script src="/__devserver__/livereload.js" data-page="app">' in body
    status, _, body = get(server, "/index.html")
    assert status == 200 and SCRIPT_TAG in body and b"data-page" not in body


def test_script_is_small_and_self_contained(shared: LiveServer) -> None:
    server = shared
    status, headers, script = get(server, "/__devserver__/livereload.js")
    assert status == 200 and int(headers["content-length"]) == len(script)
    assert len(script) < 4096, len(script)
    text = script.decode("utf-8")
    assert re.search(r"https?:|//[\w.]+/|importScripts|\bimport\b|\brequire\(", text) is None
    assert text.isascii()
    assert "/__devserver__/events" in text and "SharedWorker" in text and "BroadcastChannel" in text


def test_compact_keeps_literals_and_drops_comments() -> None:
    source = (
        "// a comment line\n"
        "const a = \"x  y // not a comment\", b = /[/\\]]+ x/g;  // trailing\n"
        "if (a == 'q  r') return b   ;\n"
        "f(`${a} + ${b}`,\n"
        "  2);\n"
        "}\n"
    )
    assert compact(source) == (
        'const a="x  y // not a comment",b=/[/\\]]+ x/g;'
        "if(a=='q  r')return b;f(`${a} + ${b}`,2);}\n"
    )


def test_live_reload_requests_stay_out_of_the_request_log(shared: LiveServer) -> None:
    server = shared
    stream = EventStream(server)
    try:
        stream.next_event()
        assert get(server, "/__devserver__/livereload.js")[0] == 200
        assert get(server, "/one_k.txt")[0] == 200
        server.wait_for(r"GET /one_k\.txt")
    finally:
        stream.close()
    assert not [line for line in server.lines if "__devserver__" in line]


def test_a_module_that_does_not_compile_is_announced_until_fixed(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("X = 1\n")
    supervisor = RecordingSupervisor(Config(root=str(tmp_path / "html"), dynamic=str(tmp_path)))
    watcher = Watcher()
    watcher.supervisor = supervisor
    watcher.graph = ImportGraph(str(tmp_path))

    (tmp_path / "app.py").write_text("X = 1\ndef broken(:\n")
    watcher.on_changes({str(tmp_path / "app.py")})
    message = supervisor.pages()[-1]
    assert (message.kind, message.paths) == ("failed", ("/app.py",)) and message.failure is not None
    failure = message.failure
    assert failure.line == 2 and "SyntaxError" in failure.message and failure.file.endswith("app.py")

    (tmp_path / "other.py").write_text("Y = 2\n")  # still broken: a good save elsewhere keeps the error
    watcher.on_changes({str(tmp_path / "other.py")})
    assert supervisor.pages()[-1] == PageChanged("failed", ("/other.py",), failure)

    (tmp_path / "app.py").write_text("X = 2\n")
    watcher.on_changes({str(tmp_path / "app.py")})
    assert supervisor.pages()[-1] == PageChanged("reload", ("/app.py",))


class RecordingSupervisor:
    """Stands in for the supervisor: records what the watcher tells it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.calls: list[object] = []

    def reload(self, modules: list[str], paths: list[str]) -> int:
        return 1

    def broadcast(self, message: tuple[object, ...]) -> None:
        self.calls.append(message)

    def sink(self, events: list[object]) -> None:
        pass

    def pages(self) -> list[PageChanged]:
        return [c for c in self.calls if isinstance(c, PageChanged)]


def test_open_stream_does_not_block_other_requests(server_factory) -> None:
    server = server_factory("--workers", "1")
    streams = [EventStream(server) for _ in range(3)]
    try:
        status, _, body = get(server, "/index.html")  # answered (within the client's timeout) while three are open
        assert status == 200 and b"fixture index" in body
        assert get(server, "/echo.py")[0] == 200
        assert not any(stream.response.isclosed() for stream in streams)
    finally:
        for stream in streams:
            stream.close()


def test_streams_end_promptly_on_shutdown(server_factory) -> None:
    server = server_factory("--workers", "1")
    stream = EventStream(server)
    try:
        assert server.stop() == 0
        # read() raises IncompleteRead unless the last chunk arrived: the stream was ended cleanly,
        # by the worker, not cut when the supervisor killed it after the drain limit.
        assert stream.response.read().startswith(b"retry:")
        assert not [line for line in server.lines if "killed after the drain limit" in line]
    finally:
        stream.close()


# -- a real browser ------------------------------------------------------------

@needs_chromium
def test_page_reloads_itself_after_an_html_edit(server_factory, site: Path, page: Page) -> None:
    index = site / "html_page" / "index.html"
    index.write_text("<!DOCTYPE html><html><body><h1 id=title>before</h1></body></html>\n")
    server = server_factory("--workers", "2")
    page.open(server.url + "index.html")
    assert page.evaluate("document.getElementById('title').textContent") == "before"

    index.write_text("<!DOCTYPE html><html><body><h1 id=title>after the edit</h1></body></html>\n")
    assert page.wait_for("document.getElementById('title')?.textContent === 'after the edit'")


@needs_chromium
def test_an_evaluation_cut_short_by_a_reload_reads_as_between_two_documents(server_factory, site: Path,
                                                                             page: Page) -> None:
    # What a poll of wait_for meets when the live reload lands while it is in flight (CI failed on it once).
    server = server_factory()
    page.open(server.url + "index.html")
    before = page.navigations()
    assert page.evaluate("new Promise(() => setTimeout(() => location.reload(), 20))") is None
    assert page.wait_for("document.readyState === 'complete' && window.devserverLiveReload?.connected")
    assert page.navigations() == before + 1


@needs_chromium
def test_stylesheet_is_swapped_without_a_reload(server_factory, site: Path, page: Page) -> None:
    root = site / "html_page"
    (root / "index.html").write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="/style.css"></head>'
        "<body><h1>styled</h1></body></html>\n")
    (root / "style.css").write_text("h1 { color: rgb(255, 0, 0); }\n")
    server = server_factory("--workers", "2")
    page.open(server.url + "index.html")
    color = "getComputedStyle(document.querySelector('h1')).color"
    assert page.wait_for(color) == "rgb(255, 0, 0)"
    page.evaluate("window.marker = 42")
    navigations = page.navigations()

    (root / "style.css").write_text("h1 { color: rgb(0, 0, 255); }\n")
    page.wait_for(f"{color} === 'rgb(0, 0, 255)'")
    assert page.evaluate("window.marker") == 42  # same document: no reload happened
    assert page.navigations() == navigations
    assert page.evaluate("document.querySelectorAll('link[rel=stylesheet]').length") == 1
