"""Live browser reload: the worker's side.

* The script ``<script src="/__devserver__/livereload.js">`` goes before
  ``</body>`` (or at the end) of every whole HTML document: static files
  (:func:`inject`), pages from apps (:func:`inject_app`, marked
  ``data-page="app"``) and the server's own error pages (marked
  ``data-page="error"``).  The mark tells the script which saves concern
  its page: a ``.py`` save reloads app pages and error pages, not static
  ones.  A fragment (an htmx partial, a snippet fetched into a page, text
  an app labels text/html) is left untouched: the page it lands in already
  has the script, and a second copy would be markup the author never wrote.
* ``/__devserver__/events`` is a Server-Sent Events stream (HTML Living
  Standard §9.2) held open per *browser*: the script runs it in a
  SharedWorker that relays to every tab.  An open stream is an idle
  coroutine on the worker's loop: it never holds up other requests.  It
  starts with a ``hello`` event naming this server run (:func:`instance_id`;
  a browser that reconnects to another run reloads its pages) and saying
  whether a module fails to compile (a browser showing an error that was
  fixed while it was away reloads its pages), then sends a
  ``: ping`` comment every :data:`PING_EVERY` seconds (a write is how a
  half-dead client gets noticed), and ends when the client goes away or the
  worker drains.
* The supervisor's watcher broadcasts ``PageChanged(kind, paths)`` to
  every worker; each worker forwards it to its own open streams as an event
  named ``kind`` ("reload", "css" or "app") whose data is the JSON list of paths.
  ``PageChanged("failed", paths, failure)`` (a module does not compile)
  becomes a ``failed`` event whose data is the failure's fields plus
  ``paths``; a browser that connects while it holds gets it too.
* The script is served compacted (:func:`compact`): under 4 KiB.
* Requests under ``/__devserver__/`` are the server's own plumbing: the
  worker leaves them out of the request log and statistics.  One whose
  ``Origin`` is another site's is refused (403): only this server's pages
  read them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Protocol
from urllib.parse import urlsplit

from devserver.handlers import pages
from devserver.handlers.exchange import Exchange
from devserver.handlers.exchange import Responder as Connection
from devserver.handlers.jscompact import compact
from devserver.handlers.routes import INTERNAL_PREFIX
from devserver.http.parser import Request
from devserver.ipc.control import PageChanged


class Pluggable(Protocol):
    """The slots of a worker that live reload fills."""

    sock: socket.socket  # the listening socket: with the supervisor's pid, it names the server run
    internal: Callable[[Connection, Exchange], Awaitable[None]] | None
    html_transform: Callable[[bytes], bytes] | None  # pages from apps
    static_html_transform: Callable[[bytes], bytes] | None  # pages from files under --root
    page_listeners: list[Callable[[PageChanged], None]]
    shutdown_hooks: list[Callable[[], None]]

PREFIX = INTERNAL_PREFIX  # the router sends these paths here (handlers/routes.py)
SCRIPT_URL = PREFIX + "livereload.js"
EVENTS_URL = PREFIX + "events"
SCRIPT_TAG = f'<script src="{SCRIPT_URL}"></script>'.encode()
APP_SCRIPT_TAG = f'<script src="{SCRIPT_URL}" data-page="app"></script>'.encode()
ERROR_SCRIPT_TAG = f'<script src="{SCRIPT_URL}" data-page="error"></script>'
PING_EVERY = 10.0  # seconds between keep-alive comments
CHECK_EVERY = 0.5  # seconds between looks at a stream's connection
RETRY_MS = 1000  # the browser's reconnection delay after the stream drops
NO_CACHE = ("Cache-Control", "no-cache")


# A whole document says so with a doctype, an <html> tag or a </body> end tag;
# a fragment has none of them (all three may be omitted in a valid document,
# but then there is no way to tell it from a fragment, and a fragment wins).
_DOCUMENT = re.compile(rb"<!doctype\s+html|<html[\s>/]|</body\s*>", re.IGNORECASE)


def inject(html: bytes, tag: bytes = SCRIPT_TAG) -> bytes:
    """``html`` with the live-reload script (``tag``) before its last ``</body>``.

    A document without ``</body>`` gets it at the end; a fragment gets nothing.
    """
    if _DOCUMENT.search(html) is None:
        return html
    index = html.lower().rfind(b"</body")
    if index < 0:
        return html + tag
    return html[:index] + tag + html[index:]


def inject_app(html: bytes) -> bytes:
    """``inject`` for a page an app made: module saves reload it."""
    return inject(html, APP_SCRIPT_TAG)


def instance_id(sock: socket.socket) -> str:
    """Names this server run, the same in every worker: the supervisor's pid and its start time.

    Both change when the server is started again, also on the same port.  (Not
    the listening socket: on Linux each worker has a socket of its own.)  Where
    /proc is missing, the socket's inode stands in for the start time.
    """
    supervisor = os.getppid()
    try:
        with open(f"/proc/{supervisor}/stat") as f:
            return f"{supervisor}-{f.read().rsplit(')', 1)[1].split()[19]}"  # field 22: start time (proc(5))
    except (OSError, IndexError):
        pass
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except (OSError, AttributeError, ValueError):
        inode = 0
    return f"{supervisor}-{inode}"


def event_frame(name: str, data: object) -> bytes:
    """One Server-Sent Event; the data is JSON, so it holds no newline."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def same_origin(request: Request) -> bool:
    """No ``Origin`` (a same-origin GET sends none), or one naming the request's own Host.

    The Host check keeps out rebound names; this keeps out pages of other
    sites that reach 127.0.0.1 under its own name (RFC 6454 §7).
    """
    origin = next((value for name, value in request.headers if name.lower() == "origin"), None)
    if origin is None:
        return True
    return urlsplit(origin.strip()).netloc.lower() == (request.host or "").lower()


class _Stream:
    __slots__ = ("conn", "exchange")

    def __init__(self, conn: Connection, exchange: Exchange) -> None:
        self.conn = conn
        self.exchange = exchange


@functools.cache
def _script() -> bytes:
    """The client script, compacted once, when a page first asks for it (not at every worker's start)."""
    from importlib.resources import files  # here: importlib.resources takes milliseconds to import (pathlib)

    return compact(files("devserver.handlers").joinpath("livereload.js").read_text("utf-8")).encode()


class LiveReload:
    """The event streams of one worker, and the hooks that feed them."""

    def __init__(self, instance: str) -> None:
        self.streams: set[_Stream] = set()
        self.stopping = asyncio.Event()
        self.routes = {EVENTS_URL: self.events, SCRIPT_URL: self.serve_script}
        self.instance = instance
        self.failed = b""  # the last "failed" event until a module save compiles: a browser that connects gets it

    async def internal(self, conn: Connection, exchange: Exchange) -> None:
        """Answer a request under ``/__devserver__/``."""
        handler = self.routes.get(exchange.request.path)
        if not same_origin(exchange.request):
            conn.send_error(403, "The server's own endpoints answer pages of this server only.")
            conn.end()
            return
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
        conn.send(200, [("Content-Type", "text/javascript; charset=utf-8"), NO_CACHE], _script())
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
            # "failing" lets a browser that was away (its worker replaced by a warm restart) know whether
            # the error it shows was fixed meanwhile: then it reloads, as it would have on the fix's event.
            hello = event_frame("hello", {"instance": self.instance, "failing": bool(self.failed)})
            conn.write(f"retry: {RETRY_MS}\n: devserver live reload\n\n".encode() + hello + self.failed)
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
        """Control message from the supervisor: tell every open browser."""
        paths = list(message.paths)
        failure = message.failure
        frame = event_frame(message.kind, paths if failure is None else {**asdict(failure), "paths": paths})
        if message.kind == "failed":
            self.failed = frame
        elif message.kind == "app" or any(path.endswith(".py") for path in paths):
            self.failed = b""  # the modules compile again
        for stream in list(self.streams):
            stream.conn.write(frame)

    def shutdown(self) -> None:
        """The worker drains: end every stream now and close its connection."""
        for stream in self.streams:
            stream.exchange.close = True
        self.stopping.set()


def install(worker: Pluggable) -> LiveReload:
    """Hook live reload into ``worker``."""
    live = LiveReload(instance_id(worker.sock))
    worker.internal = live.internal
    worker.html_transform = inject_app
    worker.static_html_transform = inject
    pages.add_footer(ERROR_SCRIPT_TAG)
    worker.page_listeners.append(live.page_changed)
    worker.shutdown_hooks.append(live.shutdown)
    return live
