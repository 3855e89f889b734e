"""The browser side of live reload, in headless Chromium: many tabs, pages that
recover by themselves, the error overlay, scroll, and reloading only what changed.

The servers run with PYTHONDONTWRITEBYTECODE removed, as on users' machines.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from chromium import Chromium, Page, browser_fixture, needs_chromium, page_fixture  # noqa: F401 - fixtures

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
        for number, tab in enumerate(tabs, 1):
            took = tab.open(server.url + "index.html")
            assert took < 2.0, f"tab {number} took {took:.2f} s to load"
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
