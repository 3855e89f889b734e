"""Which interface an app speaks: ASGI 3.0 or WSGI, told from the object, never by calling it.

An ASGI app is a callable whose call is a coroutine function taking
``(scope, receive, send)``: FastAPI, Starlette, Litestar and Quart apps,
Django's ``ASGIHandler``, and any ``async def app(scope, receive, send)``.
An object may also say so itself: ``asgi = True``, or asgiref's
``markcoroutinefunction`` on a function that returns a coroutine.
Everything else callable is taken for WSGI, as before.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:
    from devserver.handlers.asgi import ASGIApp


def _call_of(app: object) -> object:
    """What runs when ``app`` is called: the function, or a class instance's ``__call__``."""
    while isinstance(app, functools.partial):
        app = app.func
    if inspect.isfunction(app) or inspect.ismethod(app):
        return app
    return getattr(type(app), "__call__", None)  # noqa: B004 - the method itself, to ask if it is a coroutine function


def is_asgi(app: object) -> TypeGuard[ASGIApp]:
    """True if ``app`` is an ASGI 3.0 application."""
    if getattr(app, "asgi", None) is True:
        return True
    if inspect.isclass(app):
        return False  # an ASGI 2 class (scope) -> instance, or a WSGI class: not served as ASGI 3
    call = _call_of(app)
    return call is not None and inspect.iscoroutinefunction(call)
