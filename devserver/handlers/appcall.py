"""The seam between the worker and a loaded app, whichever protocol the app speaks.

The worker calls every app the same way: it looks up the ``AppHandler`` for
what the app speaks (``speaks``, a key of the table ``app_handlers`` builds)
and asks it to ``start`` the app for the current exchange; the handler
answers through the ``Responder`` and calls ``finished()`` once the answer
is out.  WSGI (handlers/wsgi.py) is the one entry today.  A protocol plugs
in beside it with three lines here: its test in ``speaks``, its entry in
``app_handlers``, and a class with this ``start`` (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from devserver.handlers.exchange import Exchange, Responder
from devserver.handlers.wsgi import WSGIApp, WSGIServer, start_wsgi

# What a module loader hands out, whatever it speaks (a WSGI callable today); each handler takes its own kind.
LoadedApp = Callable[..., Any]


class AppHandler(Protocol):
    """Runs a loaded app for one request, as its protocol says."""

    def start(self, responder: Responder, exchange: Exchange, app: LoadedApp, script_name: str, path_info: str,
              finished: Callable[[], None]) -> None:
        """Start ``app`` for ``exchange`` (begun on ``responder``); ``finished()`` once it is answered.

        ``script_name`` is where the app is mounted ("" for the APP,
        "/name.py" for a module of --dynamic) and ``path_info`` the rest of
        the path.  Never blocks the loop and never raises for what the app
        does: its failures are answered as pages.
        """


@dataclass(frozen=True, slots=True)
class WSGIHandler:
    """PEP 3333: the app runs in the worker's thread pool (wsgi.start_wsgi)."""

    server: WSGIServer

    def start(self, responder: Responder, exchange: Exchange, app: WSGIApp, script_name: str, path_info: str,
              finished: Callable[[], None]) -> None:
        start_wsgi(responder, exchange, app, script_name, path_info, self.server, finished)


def speaks(app: LoadedApp) -> str:
    """The protocol ``app`` speaks, as a key of ``app_handlers``: every app is a WSGI app today."""
    return "wsgi"


def app_handlers(server: WSGIServer) -> dict[str, AppHandler]:
    """One handler per protocol, made with what the worker hands in once (its pool, address, log, transform)."""
    return {"wsgi": WSGIHandler(server)}


class AppHandlers:
    """The handler of each app a worker calls, chosen once per app.

    The handler of the last app called is kept: a worker serving an APP asks
    ``speaks`` once, not per request (and holds no app a reload dropped for
    longer than until its next call).
    """

    __slots__ = ("table", "app", "handler")

    def __init__(self, table: dict[str, AppHandler]) -> None:
        self.table = table
        self.app: LoadedApp | None = None  # the last app called, and its handler (read on the request path)
        self.handler = table["wsgi"]  # until the first call (no app is None)

    def of(self, app: LoadedApp) -> AppHandler:
        if app is not self.app:
            self.handler = self.table[speaks(app)]
            self.app = app
        return self.handler


async def serve_app(handler: AppHandler, responder: Responder, exchange: Exchange, app: LoadedApp, script_name: str,
                    path_info: str) -> None:
    """``handler.start`` for a caller running in a task (the path after a first import): returns once answered."""
    answered: asyncio.Future[None] = responder.loop.create_future()

    def finished() -> None:
        if not answered.cancelled():  # cancelled: the worker is stopping
            answered.set_result(None)

    handler.start(responder, exchange, app, script_name, path_info, finished)
    await answered
