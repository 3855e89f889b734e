"""The seam an app is called through, whichever protocol it speaks (handlers/appcall.py), in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from devserver.handlers import appcall
from devserver.handlers.appcall import AppHandlers, ASGIHandler, WSGIHandler, app_handlers
from devserver.handlers.asgi import ASGIApplication, ASGIServer
from devserver.handlers.lifespan import LifespanKeeper
from devserver.handlers.wsgi import WSGIServer


class Recording:
    """An AppHandler that notes what it was asked to start, and says it is done at once."""

    def __init__(self) -> None:
        self.started: list[tuple[Any, ...]] = []

    def start(self, responder: Any, exchange: Any, app: Any, script_name: str, path_info: str,
              finished: Callable[[], None]) -> None:
        self.started.append((responder, exchange, app, script_name, path_info))
        finished()


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    return [b""]


async def other_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


def test_a_wsgi_callable_speaks_wsgi_and_a_loaded_asgi_app_asgi_each_with_its_handler() -> None:
    server = WSGIServer(None, ("127.0.0.1", 8000), False, lambda line: None, None)  # type: ignore[arg-type]
    asgi = ASGIServer(("127.0.0.1", 8000), lambda line: None)
    lifespans = LifespanKeeper("auto", lambda line: None)
    table = app_handlers(server, asgi, lifespans)
    assert sorted(table) == ["asgi", "wsgi"]
    assert isinstance(table["wsgi"], WSGIHandler) and table["wsgi"].server is server
    assert isinstance(table["asgi"], ASGIHandler) and table["asgi"].server is asgi and table["asgi"].lifespans is lifespans
    assert appcall.speaks(wsgi_app) == "wsgi"
    assert appcall.speaks(ASGIApplication(other_app, "main:app")) == "asgi"


def test_the_handler_is_chosen_by_what_the_app_speaks_once_per_app(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[object] = []

    def speaks(app: object) -> str:
        asked.append(app)
        return "other" if app is other_app else "wsgi"

    monkeypatch.setattr(appcall, "speaks", speaks)
    wsgi, other = Recording(), Recording()
    handlers = AppHandlers({"wsgi": wsgi, "other": other})
    assert [handlers.of(app) for app in (wsgi_app, wsgi_app, wsgi_app)] == [wsgi, wsgi, wsgi]
    assert asked == [wsgi_app]  # asked once for the app served again and again
    assert handlers.of(other_app) is other and handlers.of(wsgi_app) is wsgi
    assert asked == [wsgi_app, other_app, wsgi_app]


def test_serve_app_returns_once_the_handler_says_finished() -> None:
    handler = Recording()

    async def serve() -> Any:
        responder = SimpleNamespace(loop=asyncio.get_running_loop())
        await appcall.serve_app(handler, responder, "exchange", wsgi_app, "/hello.py", "/rest")  # type: ignore[arg-type]
        return responder

    responder = asyncio.run(serve())
    assert handler.started == [(responder, "exchange", wsgi_app, "/hello.py", "/rest")]
