"""Live reload: the injected script, the Server-Sent Events stream, and a real browser.

The browser tests drive headless Chromium over the DevTools protocol:
Chromium starts with ``--remote-debugging-port=0``; the port it picked is read
from ``DevToolsActivePort`` in its profile folder, and the page target is
driven over a WebSocket (``websocket-client``) with ``Runtime.evaluate``.
They are skipped only when no Chromium is installed.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.livereload import SCRIPT_TAG, inject

EVENTS = "/__devserver__/events"


def get(server, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


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


def test_stream_sends_reload_and_css_events(server_factory, site: Path) -> None:
    root = site / "html_page"
    (root / "css").mkdir()
    (root / "css" / "style.css").write_text("h1 { color: red; }\n")
    server = server_factory("--workers", "2")
    stream = EventStream(server)
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        assert stream.response.getheader("Cache-Control") == "no-cache"

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


def test_open_stream_does_not_block_other_requests(server_factory) -> None:
    server = server_factory("--workers", "1")
    streams = [EventStream(server) for _ in range(3)]
    try:
        started = time.monotonic()
        status, _, body = get(server, "/index.html")
        assert status == 200 and b"fixture index" in body
        assert get(server, "/echo.py")[0] == 200
        assert time.monotonic() - started < 2.0
    finally:
        for stream in streams:
            stream.close()


def test_streams_end_promptly_on_shutdown(server_factory) -> None:
    server = server_factory("--workers", "1")
    stream = EventStream(server)
    try:
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 4.0  # well under the drain timeout
        # read() raises IncompleteRead unless the last chunk arrived: the stream was ended cleanly.
        assert stream.response.read().startswith(b"retry:")
    finally:
        stream.close()


# -- a real browser ------------------------------------------------------------

CHROME = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROME is None, reason="chromium is not installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Page:
    """One browser tab over the DevTools protocol."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=10, suppress_origin=True)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:  # anything else is an event we did not ask about
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            return None  # e.g. the page is between two documents
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression!r}; page: {self.evaluate('document.documentElement.outerHTML')!r}")

    def open(self, url: str) -> None:
        """Navigate and wait until live reload is connected."""
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")
        self.wait_for("window.devserverLiveReload && window.devserverLiveReload.readyState === 1")

    def close(self) -> None:
        self.ws.close()


class Chromium:
    """A headless Chromium in its own process group, with a throwaway profile."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc = subprocess.Popen(
            [CHROME, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.port = self._wait_port(30.0)

    def _wait_port(self, timeout: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            try:
                return int(marker.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        raise RuntimeError("chromium did not open its debugging port")

    def new_page(self) -> Page:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as response:
            targets = json.load(response)
        target = next(t for t in targets if t["type"] == "page")
        return Page(target["webSocketDebuggerUrl"])

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.stop()


@pytest.fixture
def page(browser: Chromium) -> Iterator[Page]:
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.call("Page.navigate", url="about:blank")
        tab.close()


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

    (root / "style.css").write_text("h1 { color: rgb(0, 0, 255); }\n")
    page.wait_for(f"{color} === 'rgb(0, 0, 255)'")
    assert page.evaluate("window.marker") == 42  # same document: no reload happened
    assert page.evaluate("document.querySelectorAll('link[rel=stylesheet]').length") == 1
