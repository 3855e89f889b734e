"""Headless Chromium driven over the DevTools protocol, for the live-reload tests.

Chromium starts with ``--remote-debugging-port=0``; the port it picked is read
from ``DevToolsActivePort`` in its profile folder.  Each test tab is a new
target (``/json/new``) driven over a WebSocket (``websocket-client``) with
``Runtime.evaluate``; the protocol events it receives (navigations) are kept.
Tests that need it are skipped only when no Chromium is installed.
"""

from __future__ import annotations

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

CHROME = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROME is None, reason="chromium is not installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows"]


# Chromium's answers to a call that was in flight while the tab changed documents
# (a live reload): the call is lost, the tab is fine.
DOCUMENT_GONE = ("Inspected target navigated or closed", "Execution context was destroyed",
                 "Cannot find default execution context")


class ProtocolError(RuntimeError):
    """A DevTools call answered with an error."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error}")
        self.message = str(error.get("message", ""))

    @property
    def document_gone(self) -> bool:
        return self.message.startswith(DOCUMENT_GONE)


class Page:
    """One browser tab over the DevTools protocol."""

    def __init__(self, target: dict[str, Any]) -> None:
        import websocket

        self.id = target["id"]
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=10, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.call("Page.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise ProtocolError(method, message["error"])
                return message["result"]
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The expression's value, or None when the page is between two documents."""
        try:
            result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        except ProtocolError as error:
            if error.document_gone:
                return None
            raise
        if "exceptionDetails" in result:
            return None
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        html = self.evaluate("document.documentElement.outerHTML")
        raise AssertionError(f"timed out waiting for {expression!r}; page: {html!r}")

    def open(self, url: str, timeout: float = 10.0) -> float:
        """Navigate and wait until live reload is connected; returns the seconds it took."""
        started = time.monotonic()
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
                      " && window.devserverLiveReload && window.devserverLiveReload.connected", timeout)
        return time.monotonic() - started

    def navigations(self) -> int:
        """Main-frame navigations seen so far (a reload is one)."""
        self.evaluate("0")  # collect the events that arrived meanwhile
        return sum(1 for e in self.events
                   if e["method"] == "Page.frameNavigated" and "parentId" not in e["params"]["frame"])

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

    def _json(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        try:
            return json.loads(body)
        except ValueError:
            return body.decode()

    def new_page(self) -> Page:
        """A new tab on about:blank."""
        return Page(self._json("new?about:blank", "PUT"))

    def close_page(self, page: Page) -> None:
        page.close()
        self._json(f"close/{page.id}")

    def targets(self, kind: str) -> list[dict[str, Any]]:
        """The browser's targets of one type ("page", "shared_worker", ...)."""
        return [t for t in self._json("list") if t["type"] == kind]

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


@pytest.fixture(scope="module", name="browser")
def browser_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """One Chromium for the tests of a module."""
    if CHROME is None:
        pytest.skip("chromium is not installed")
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.stop()


@pytest.fixture(name="page")
def page_fixture(browser: Chromium) -> Iterator[Page]:
    """A fresh tab, closed after the test."""
    tab = browser.new_page()
    try:
        yield tab
    finally:
        browser.close_page(tab)
