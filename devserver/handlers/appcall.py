"""The seam between the worker and a loaded app, whichever protocol the app speaks.

The worker calls every app the same way: it looks up the ``AppHandler`` for
what the app speaks (``speaks``, a key of the table ``app_handlers`` builds)
and asks it to ``start`` the app for the current exchange; the handler
answers through the ``Responder`` and calls ``finished()`` once the answer
is out.  WSGI (handlers/wsgi.py: the app in the worker's thread pool) and
ASGI (handlers/asgi.py: the app as a task on the worker's loop, after its
lifespan's startup) are its entries; a protocol plugs in with its test in
``speaks``, its entry in ``app_handlers`` and a class with this ``start``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from devserver.handlers.asgi import ASGIApplication, ASGIServer, start_asgi
from devserver.handlers.exchange import Exchange, Responder
from devserver.handlers.lifespan import Lifespan, LifespanKeeper
from devserver.handlers.wsgi import WSGIApp, WSGIServer, start_wsgi
from devserver.kit.frozen import record
from devserver.probes.recorder import entered, left

# What a module loader hands out: a WSGI callable, or an ASGI app with its lifespan's state; each handler takes its own
# kind, which the table's key (speaks) guarantees: hence AppHandler[Any] in the table.
LoadedApp = WSGIApp | ASGIApplication


A = TypeVar("A", contravariant=True)


class AppHandler(Protocol[A]):
    """Runs a loaded app of its protocol (``A``) for one request."""

    def start(self, responder: Responder, exchange: Exchange, app: A, script_name: str, path_info: str,
              finished: Callable[[], None]) -> None:
        """Start ``app`` for ``exchange`` (begun on ``responder``); ``finished()`` once it is answered.

        ``script_name`` is where the app is mounted ("" for the APP,
        "/name.py" for a module of --dynamic) and ``path_info`` the rest of
        the path.  Never blocks the loop and never raises for what the app
        does: its failures are answered as pages.
        """


@record
class WSGIHandler:
    """PEP 3333: the app runs in the worker's thread pool (wsgi.start_wsgi)."""

    server: WSGIServer

    def start(self, responder: Responder, exchange: Exchange, app: WSGIApp, script_name: str, path_info: str,
              finished: Callable[[], None]) -> None:
        start_wsgi(responder, exchange, app, script_name, path_info, self.server, finished)


@record
class ASGIHandler:
    """ASGI 3.0: the app runs as a task on the worker's loop (asgi.start_asgi), once its lifespan has started."""

    server: ASGIServer
    lifespans: LifespanKeeper

    def start(self, responder: Responder, exchange: Exchange, app: ASGIApplication, script_name: str, path_info: str,
              finished: Callable[[], None]) -> None:
        lifespan = self.lifespans.ready(app)
        if lifespan is not None:
            self._call(responder, exchange, app, script_name, finished, lifespan)
        else:  # a reloaded app: the old one's shutdown and this one's startup come first
            responder.loop.create_task(self._switch_then_call(responder, exchange, app, script_name, finished))

    async def _switch_then_call(self, responder: Responder, exchange: Exchange, app: ASGIApplication, root_path: str,
                                finished: Callable[[], None]) -> None:
        lifespan = await self.lifespans.switch(app)
        if responder.closing:
            exchange.close = True
            responder.end()
            finished()
            return
        self._call(responder, exchange, app, root_path, finished, lifespan)

    def _call(self, responder: Responder, exchange: Exchange, app: ASGIApplication, root_path: str,
              finished: Callable[[], None], lifespan: Lifespan) -> None:
        if lifespan.failure is not None and answered_failed_startup(responder, exchange, lifespan):  # rare: no call
            finished()
            return
        recording = entered(exchange)  # the task start_asgi makes copies the context: the recorder goes with it
        start_asgi(responder, exchange, app, root_path, self.server, finished)
        left(recording)


def answered_failed_startup(responder: Responder, exchange: Exchange, lifespan: Lifespan) -> bool:
    """Answer 500 for an app whose lifespan startup failed (never served as if it were fine); False if it started."""
    if lifespan.failure is None:
        return False
    exchange.traceback = lifespan.traceback
    responder.send_error(500, f"The app's lifespan startup failed: {lifespan.failure}", lifespan.traceback)
    responder.end()
    return True


def speaks(app: LoadedApp) -> str:
    """The protocol ``app`` speaks, as a key of ``app_handlers`` (the loaders wrapped ASGI apps: apps/protocol.py)."""
    return "asgi" if isinstance(app, ASGIApplication) else "wsgi"


def app_handlers(wsgi: WSGIServer, asgi: ASGIServer, lifespans: LifespanKeeper) -> dict[str, AppHandler[Any]]:
    """One handler per protocol, made with what the worker hands in once (its pool, address, log, transform)."""
    return {"wsgi": WSGIHandler(wsgi), "asgi": ASGIHandler(asgi, lifespans)}


class AppHandlers:
    """The handler of each app a worker calls, chosen once per app.

    The handler of the last app called is kept: a worker serving an APP asks
    ``speaks`` once, not per request (and holds no app a reload dropped for
    longer than until its next call).
    """

    __slots__ = ("table", "app", "handler")

    def __init__(self, table: dict[str, AppHandler[Any]]) -> None:
        self.table = table
        self.app: LoadedApp | None = None  # the last app called, and its handler (read on the request path)
        self.handler = table["wsgi"]  # until the first call (no app is None)

    def of(self, app: LoadedApp) -> AppHandler[Any]:
        if app is not self.app:
            self.handler = self.table[speaks(app)]
            self.app = app
        return self.handler


async def serve_app(handler: AppHandler[Any], responder: Responder, exchange: Exchange, app: LoadedApp, script_name: str,
                    path_info: str) -> None:
    """``handler.start`` for a caller running in a task (the path after a first import): returns once answered."""
    answered: asyncio.Future[None] = responder.loop.create_future()

    def finished() -> None:
        if not answered.cancelled():  # cancelled: the worker is stopping
            answered.set_result(None)

    handler.start(responder, exchange, app, script_name, path_info, finished)
    await answered
