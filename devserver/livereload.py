"""Live browser reload: the worker's side.

* ``html_transform`` adds ``<script src="/__devserver__/livereload.js">``
  before ``</body>`` (or at the end) of every whole HTML document, static or
  from an app.  A fragment (an htmx partial, a snippet fetched into a page,
  text an app labels text/html) is left untouched: the page it lands in
  already has the script, and a second copy would be markup the author never
  wrote.
* ``/__devserver__/events`` is a Server-Sent Events stream (HTML Living
  Standard §9.2) held open per browser page.  An open stream is an idle
  coroutine on the worker's loop: it never holds up other requests.  It
  sends a ``retry:`` hint, a ``: ping`` comment every :data:`PING_EVERY`
  seconds (a write is how a half-dead client gets noticed), and ends when the
  client goes away or the worker drains.
* The supervisor's watcher broadcasts ``PageChanged(kind, paths)`` to
  every worker; each worker forwards it to its own open streams as an event
  named ``kind`` ("reload" or "css") whose data is the JSON list of paths.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Protocol

from .control import PageChanged
from .exchange import Exchange
from .exchange import Responder as Connection


class Pluggable(Protocol):
    """The slots of a worker that live reload fills."""

    internal: Callable[[Connection, Exchange], Awaitable[None]] | None
    html_transform: Callable[[bytes], bytes] | None
    page_listeners: list[Callable[[PageChanged], None]]
    shutdown_hooks: list[Callable[[], None]]

PREFIX = "/__devserver__/"
SCRIPT_URL = PREFIX + "livereload.js"
EVENTS_URL = PREFIX + "events"
SCRIPT_TAG = f'<script src="{SCRIPT_URL}"></script>'.encode()
PING_EVERY = 10.0  # seconds between keep-alive comments
CHECK_EVERY = 0.5  # seconds between looks at a stream's connection
RETRY_MS = 1000  # the browser's reconnection delay after the stream drops
NO_CACHE = ("Cache-Control", "no-cache")


# A whole document says so with a doctype, an <html> tag or a </body> end tag;
# a fragment has none of them (all three may be omitted in a valid document,
# but then there is no way to tell it from a fragment, and a fragment wins).
_DOCUMENT = re.compile(rb"<!doctype\s+html|<html[\s>/]|</body\s*>", re.IGNORECASE)


def inject(html: bytes) -> bytes:
    """``html`` with the live-reload script before its last ``</body>``.

    A document without ``</body>`` gets it at the end; a fragment gets nothing.
    """
    if _DOCUMENT.search(html) is None:
        return html
    index = html.lower().rfind(b"</body")
    if index < 0:
        return html + SCRIPT_TAG
    return html[:index] + SCRIPT_TAG + html[index:]


class _Stream:
    __slots__ = ("conn", "exchange")

    def __init__(self, conn: Connection, exchange: Exchange) -> None:
        self.conn = conn
        self.exchange = exchange


class LiveReload:
    """The event streams of one worker, and the hooks that feed them."""

    def __init__(self) -> None:
        self.streams: set[_Stream] = set()
        self.stopping = asyncio.Event()
        self.script = files("devserver").joinpath("livereload.js").read_bytes()
        self.routes = {EVENTS_URL: self.events, SCRIPT_URL: self.serve_script}

    async def internal(self, conn: Connection, exchange: Exchange) -> None:
        """Answer a request under ``/__devserver__/``."""
        handler = self.routes.get(exchange.request.path)
        if handler is None:
            conn.send_error(404, f"Not found: {exchange.request.path}")
            conn.end()
            return
        if exchange.request.method not in ("GET", "HEAD"):
            conn.send(405, [("Allow", "GET, HEAD"), ("Content-Type", "text/plain; charset=utf-8")],
                      b"Only GET and HEAD are allowed here.\n")
            conn.end()
            return
        await handler(conn, exchange)

    async def serve_script(self, conn: Connection, exchange: Exchange) -> None:
        conn.send(200, [("Content-Type", "text/javascript; charset=utf-8"), NO_CACHE], self.script)
        conn.end()

    async def events(self, conn: Connection, exchange: Exchange) -> None:
        """The event stream: open until the client leaves or the worker drains."""
        headers = [("Content-Type", "text/event-stream; charset=utf-8"), NO_CACHE, ("X-Accel-Buffering", "no")]
        if self.stopping.is_set():
            exchange.close = True
        conn.start(200, headers)
        if exchange.request.method == "HEAD" or self.stopping.is_set():
            conn.finish()
            return
        stream = _Stream(conn, exchange)
        self.streams.add(stream)
        try:
            conn.write(f"retry: {RETRY_MS}\n: devserver live reload\n\n".encode())
            loop = asyncio.get_running_loop()
            next_ping = loop.time() + PING_EVERY
            while not conn.closing and not self.stopping.is_set():
                try:
                    await asyncio.wait_for(self.stopping.wait(), CHECK_EVERY)
                except TimeoutError:
                    pass
                if loop.time() >= next_ping and not conn.closing:
                    conn.write(b": ping\n\n")
                    next_ping = loop.time() + PING_EVERY
        finally:
            self.streams.discard(stream)
            conn.finish()

    def page_changed(self, message: PageChanged) -> None:
        """Control message from the supervisor: tell every open page."""
        frame = f"event: {message.kind}\ndata: {json.dumps(list(message.paths))}\n\n".encode()
        for stream in list(self.streams):
            stream.conn.write(frame)

    def shutdown(self) -> None:
        """The worker drains: end every stream now and close its connection."""
        for stream in self.streams:
            stream.exchange.close = True
        self.stopping.set()


def install(worker: Pluggable) -> LiveReload:
    """Hook live reload into ``worker``."""
    live = LiveReload()
    worker.internal = live.internal
    worker.html_transform = inject
    worker.page_listeners.append(live.page_changed)
    worker.shutdown_hooks.append(live.shutdown)
    return live
