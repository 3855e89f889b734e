"""The browser side of live reload, in headless Chromium: many tabs, pages that
recover by themselves, the error overlay, scroll, and reloading only what changed.

The servers run with PYTHONDONTWRITEBYTECODE removed, as on users' machines.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path

import pytest
from chromium import Chromium, Page, browser_fixture, needs_chromium, page_fixture  # noqa: F401 - fixtures

from devserver.handlers.jscompact import compact
from devserver.handlers.livereload import EVENTS_URL, SCRIPT_URL, event_frame

pytestmark = needs_chromium

LONG_PAGE = "<!DOCTYPE html><html><body><h1 id=title>{title}</h1><div style='height:6000px'></div></body></html>"
TITLE = "document.getElementById('title')?.textContent"


def app_source(title: str, head: str = "") -> str:
    """A dynamic module answering a long HTML page titled ``title``."""
    page = LONG_PAGE.format(title=title)
    return (f"{head}\n"
            "def application(environ, start_response):\n"
            "    start_response('200 OK', [('Content-Type', 'text/html; charset=utf-8')])\n"
            f"    return [{page!r}.encode()]\n")


def png(width: int) -> bytes:
    """A ``width`` x 1 grey PNG."""
    def part(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + part(b"IHDR", header) + part(b"IDAT", zlib.compress(b"\0" + b"\x80" * width))
            + part(b"IEND", b""))


@pytest.fixture
def start(server_factory):
    """Start a server as users run it: bytecode is written."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def start_server(*args: str):
        return server_factory("--workers", "2", *args, env=env)

    return start_server


def test_ten_tabs_load_at_once_and_one_save_reloads_them_all(start, site: Path, browser: Chromium) -> None:
    index = site / "html_page" / "index.html"
    index.write_text("<!DOCTYPE html><html><body><h1 id=title>first</h1></body></html>\n")
    server = start()
    tabs = [browser.new_page() for _ in range(10)]
    try:
        for tab in tabs:  # each loads and connects its live reload (within open()'s deadline; the time: bench/browser_tabs.py)
            tab.open(server.url + "index.html")
            tab.evaluate("window.marker = 1")
        origin = server.url.rstrip("/")
        workers = [t for t in browser.targets("shared_worker") if t["url"].startswith(origin)]
        assert len(workers) == 1  # one event stream for the ten tabs

        index.write_text("<!DOCTYPE html><html><body><h1 id=title>second</h1></body></html>\n")
        for tab in tabs:
            tab.wait_for(f"{TITLE} === 'second' && window.marker === undefined")
    finally:
        for tab in tabs:
            browser.close_page(tab)


def test_error_pages_refresh_by_themselves_once_fixed(start, site: Path, page: Page) -> None:
    module = site / "dynamic" / "fixme.py"
    module.write_text(app_source("never", head="import no_such_module_anywhere"))
    server = start()

    page.open(server.url + "fixme.py")  # the 500 page of a module that fails to import
    assert "no_such_module_anywhere" in page.evaluate("document.body.textContent")
    assert page.evaluate("devserverLiveReload.page") == "error"
    module.write_text(app_source("fixed"))
    page.wait_for(f"{TITLE} === 'fixed'")

    module.write_text(app_source("fixed") + "def broken(:\n")  # a syntax error: the 500 page shows the overlay
    page.wait_for("!!document.getElementById('devserver-overlay')")
    page.evaluate("window.marker = 1")
    page.call("Page.reload")
    page.wait_for("devserverLiveReload.page === 'error' && devserverLiveReload.connected && window.marker === undefined")
    navigations = page.navigations()
    page.wait_for("!!document.getElementById('devserver-overlay')")  # the failure, replayed to a newcomer...
    assert page.navigations() == navigations  # ...does not send the error page into a reload loop
    module.write_text(app_source("fixed again"))
    page.wait_for(f"{TITLE} === 'fixed again'")

    page.open(server.url + "later.html")  # a 404 page
    (site / "html_page" / "later.html").write_text("<html><body><h1 id=title>now here</h1></body></html>")
    page.wait_for(f"{TITLE} === 'now here'")


def test_overlay_shows_a_syntax_error_and_clears_on_the_fix(start, site: Path, page: Page) -> None:
    module = site / "dynamic" / "shown.py"
    module.write_text(app_source("working"))
    server = start()
    page.open(server.url + "shown.py")
    page.evaluate("window.marker = 1")
    navigations = page.navigations()

    module.write_text(app_source("working") + "def broken(:\n")
    text = page.wait_for("document.getElementById('devserver-overlay')?.textContent")
    assert "SyntaxError" in text and "shown.py:5" in text
    assert page.evaluate("window.marker") == 1 and page.navigations() == navigations  # still the same page

    module.write_text(app_source("fixed"))
    page.wait_for(f"{TITLE} === 'fixed' && !document.getElementById('devserver-overlay')")


def test_scroll_is_kept_on_every_path(start, site: Path, page: Page) -> None:
    module = site / "dynamic" / "long.py"
    module.write_text(app_source("v1"))
    server = start()
    page.open(server.url + "long.py")
    page.evaluate("scrollTo(0, 1500)")
    scrolled = "scrollY === 1500 && devserverLiveReload.connected"  # connected: ready for the next save

    module.write_text(app_source("v2"))  # a plain reload
    page.wait_for(f"{TITLE} === 'v2' && {scrolled}")

    module.write_text(app_source("v2") + "def broken(:\n")  # the overlay, then the fix
    page.wait_for("!!document.getElementById('devserver-overlay')")
    module.write_text(app_source("v3"))
    page.wait_for(f"{TITLE} === 'v3' && {scrolled}")

    module.write_text(app_source("v3", head="import no_such_module_anywhere"))  # the 500 page, then the fix
    page.wait_for("devserverLiveReload.page === 'error' && devserverLiveReload.connected")
    module.write_text(app_source("v4"))
    page.wait_for(f"{TITLE} === 'v4' && {scrolled}")

    static = site / "html_page" / "long.html"  # a static page
    static.write_text(LONG_PAGE.format(title="s1"))
    page.open(server.url + "long.html")
    page.evaluate("scrollTo(0, 1500)")
    static.write_text(LONG_PAGE.format(title="s2"))
    page.wait_for(f"{TITLE} === 's2' && {scrolled}")


def test_saved_image_is_fetched_again_without_a_navigation(start, site: Path, page: Page) -> None:
    root = site / "html_page"
    (root / "pic.png").write_bytes(png(1))
    (root / "pics.html").write_text(
        "<!DOCTYPE html><html><head><style>#bg{background-image:url(/pic.png);width:5px;height:5px}</style></head>"
        "<body><img id=pic src='/pic.png'><div id=bg></div></body></html>")
    server = start()
    page.open(server.url + "pics.html")
    page.wait_for("document.getElementById('pic').naturalWidth === 1")
    page.evaluate("window.marker = 1")
    navigations = page.navigations()

    (root / "pic.png").write_bytes(png(2))
    page.wait_for("document.getElementById('pic').naturalWidth === 2")
    rule = "document.styleSheets[0].cssRules[0].style.backgroundImage"
    assert "pic.png?devserver=" in page.wait_for(f"{rule}.includes('devserver=') && {rule}")
    assert page.evaluate("window.marker") == 1 and page.navigations() == navigations


def test_module_save_reloads_app_pages_but_not_static_ones(start, site: Path, browser: Chromium) -> None:
    module = site / "dynamic" / "served.py"
    module.write_text(app_source("a1"))
    server = start()
    static, app = browser.new_page(), browser.new_page()
    try:
        static.open(server.url + "index.html")
        app.open(server.url + "served.py")
        static.evaluate("window.marker = 1")
        navigations = static.navigations()

        module.write_text(app_source("a2"))
        app.wait_for(f"{TITLE} === 'a2'")  # both tabs had the message by now
        assert static.evaluate("window.marker") == 1 and static.navigations() == navigations
    finally:
        browser.close_page(static)
        browser.close_page(app)


def test_page_reloads_when_the_server_comes_back(start, server_factory, site: Path, page: Page) -> None:
    static = site / "html_page" / "long.html"
    static.write_text(LONG_PAGE.format(title="before"))
    server = start()
    page.open(server.url + "long.html")
    page.evaluate("scrollTo(0, 1500); window.marker = 1")
    server.stop()
    page.wait_for("!devserverLiveReload.connected")

    static.write_text(LONG_PAGE.format(title="after"))  # no server sees this save: the restart must
    start("--port", str(server.port))
    page.wait_for(f"{TITLE} === 'after' && window.marker === undefined && scrollY === 1500", timeout=15)


def test_without_shared_worker_one_tab_leads_and_another_takes_over(start, site: Path, browser: Chromium) -> None:
    index = site / "html_page" / "index.html"
    index.write_text("<!DOCTYPE html><html><body><h1 id=title>one</h1></body></html>\n")
    server = start()
    tabs = [browser.new_page() for _ in range(3)]
    try:
        for tab in tabs:  # as in a browser without SharedWorker: the Web Lock + BroadcastChannel path
            tab.call("Page.addScriptToEvaluateOnNewDocument", source="delete window.SharedWorker")
            tab.open(server.url + "index.html")
        locks = "navigator.locks.query().then(q => [q.held.length, q.pending.length])"
        assert tabs[0].evaluate(locks) == [1, 2]  # one tab holds the stream, two wait to take over

        index.write_text("<!DOCTYPE html><html><body><h1 id=title>two</h1></body></html>\n")
        for tab in tabs:
            tab.wait_for(f"{TITLE} === 'two' && devserverLiveReload.connected")
        leaders = [tab for tab in tabs if tab.evaluate("devserverLiveReload.leader")]
        assert len(leaders) == 1
        tabs.remove(leaders[0])
        browser.close_page(leaders[0])  # the next tab in line takes the stream over
        tabs[0].wait_for(f"{locks}.then(([held, pending]) => held === 1 && pending === 1)")
        for tab in tabs:
            tab.wait_for("devserverLiveReload.connected")
        assert sum(1 for tab in tabs if tab.evaluate("devserverLiveReload.leader")) == 1

        index.write_text("<!DOCTYPE html><html><body><h1 id=title>three</h1></body></html>\n")
        for tab in tabs:
            tab.wait_for(f"{TITLE} === 'three'")
    finally:
        for tab in tabs:
            browser.close_page(tab)


class ScriptedEvents:
    """A stand-in for the server's live-reload side whose event streams the test writes and ends.

    It serves an app page (its title counts the times it was served), the
    real script, and streams that say hello with ``failing`` as set here,
    then send what :meth:`send` is given, until :meth:`drop` ends them: the
    browser then reconnects, as to the new workers of a warm restart.
    """

    def __init__(self) -> None:
        self.failing = False
        self.served = 0
        self.streams: list[queue.Queue[bytes | None]] = []
        self.connected = threading.Condition()
        script = compact(files("devserver.handlers").joinpath("livereload.js").read_text("utf-8")).encode()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == EVENTS_URL:
                    return owner._stream(self)
                if self.path == SCRIPT_URL:
                    return self._send("text/javascript", script)
                if self.path != "/":
                    return self.send_error(404)  # the browser's /favicon.ico
                owner.served += 1
                page = (f"<!DOCTYPE html><html><body><h1 id=title>served {owner.served}</h1>"
                        f'<script src="{SCRIPT_URL}" data-page="app"></script></body></html>')
                return self._send("text/html; charset=utf-8", page.encode())

            def _send(self, kind: str, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        frames: queue.Queue[bytes | None] = queue.Queue()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        handler.wfile.write(b"retry: 100\n\n" + event_frame("hello", {"instance": "one run", "failing": self.failing}))
        handler.wfile.flush()
        with self.connected:
            self.streams.append(frames)
            self.connected.notify_all()
        while (frame := frames.get()) is not None:
            handler.wfile.write(frame)
            handler.wfile.flush()

    def wait_streams(self, count: int, timeout: float = 10.0) -> None:
        with self.connected:
            assert self.connected.wait_for(lambda: len(self.streams) >= count, timeout), self.streams

    def send(self, name: str, data: object) -> None:
        for frames in self.streams:
            frames.put(event_frame(name, data))

    def drop(self) -> None:
        """End every open stream (as a drained worker does)."""
        for frames in self.streams:
            frames.put(None)

    def stop(self) -> None:
        self.drop()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[ScriptedEvents]:
    events = ScriptedEvents()
    yield events
    events.stop()


FAILURE = {"file": "catalog/views.py", "line": 7, "message": "SyntaxError: invalid syntax", "paths": ["/views.py"]}


def test_a_page_under_the_overlay_reloads_when_its_stream_comes_back_to_a_fixed_app(scripted: ScriptedEvents,
                                                                                     page: Page) -> None:
    """A fix saved while the stream was away (its worker replaced by a warm restart, the new one's "app" event
    missed): the hello of the next stream says nothing fails, and the app page reloads."""
    page.open(scripted.url)
    scripted.wait_streams(1)
    scripted.failing = True
    scripted.send("failed", FAILURE)
    page.wait_for("!!document.getElementById('devserver-overlay')")
    page.evaluate("window.marker = 1")
    scripted.failing = False  # fixed, and the event that said so went to a stream the browser no longer has
    scripted.drop()
    page.wait_for(f"{TITLE} === 'served 2' && window.marker === undefined && devserverLiveReload.connected")
    assert page.evaluate("document.getElementById('devserver-overlay')") is None


def test_an_app_event_naming_no_file_reloads_app_pages(scripted: ScriptedEvents, page: Page) -> None:
    """The dashboard's R restarts every worker with no file changed: the app's pages still reload."""
    page.open(scripted.url)
    scripted.wait_streams(1)
    page.wait_for("devserverLiveReload.connected")
    page.evaluate("window.marker = 1")
    scripted.send("app", [])
    page.wait_for(f"{TITLE} === 'served 2' && window.marker === undefined")
