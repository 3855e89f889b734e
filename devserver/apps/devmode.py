"""Frameworks' apps served in development mode, as their own development servers serve them.

A framework that catches a view's exception and answers its own bare 500
hides the traceback from devserver's error page, the dashboard and the
console in the failing frame.  :func:`develop` is applied to every app a
worker loads (a project APP, a ``/name.py`` module) and sets, per framework
(found by the app's class, never by importing a framework):

=========  =====================================================================
Flask      ``PROPAGATE_EXCEPTIONS = True`` unless the app set it: a view's
           exception reaches the server, as under ``flask run --debug`` (whose
           Werkzeug debugger, which runs code for HTTP requests, stays off);
           the same for Quart (ASGI)
Bottle     ``catchall = False``: the exception propagates instead of Bottle's 500
Falcon     its default handler for ``Exception`` (a bare 500) is removed, so
           the exception propagates; a handler the app added is kept
Django     Django's own 500 page stays (with ``DEBUG``, the technical page that
           ``runserver`` shows: template context, settings; without, the
           project's handler500), and the exception also reaches the dashboard
           and the console through ``got_request_exception`` (:data:`CAUGHT`);
           with ``DEBUG`` and ``django.contrib.staticfiles`` installed, static
           files are served by its ``StaticFilesHandler``, as ``runserver`` does
           (its ``ASGIStaticFilesHandler`` around Django's ASGI handler, which
           keeps its own 500 page)
=========  =====================================================================

Nothing here evaluates code for a request.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, MutableMapping
from typing import Protocol, cast

from devserver.handlers.wsgi import CAUGHT

# An app of either protocol: WSGI's callable or an ASGI one (Quart, Django's ASGIHandler); each entry keeps its kind.
App = Callable[..., object]


class _Flask(Protocol):
    config: MutableMapping[str, object]


class _Bottle(Protocol):
    catchall: bool


# Each takes an app of its framework (FRAMEWORKS found it by its class) and returns what serves in its place.
def _flask(app: App) -> App:
    config = cast(_Flask, app).config
    if config.get("PROPAGATE_EXCEPTIONS") is None:
        config["PROPAGATE_EXCEPTIONS"] = True
    return app


def _bottle(app: App) -> App:
    cast(_Bottle, app).catchall = False
    return app


def _falcon(app: App) -> App:
    handlers = getattr(app, "_error_handlers", None)
    default = getattr(app, "_python_error_handler", None)
    if isinstance(handlers, dict) and default is not None and handlers.get(Exception) == default:
        del handlers[Exception]  # falcon then re-raises what no handler took (App._handle_exception)
    return app


def _django_caught(sender: object, request: object = None, **kwargs: object) -> None:
    # A WSGIRequest keeps the environ, an ASGIRequest the scope: the server reads CAUGHT from either.
    holder = getattr(request, "environ", None) or getattr(request, "scope", None)
    if isinstance(holder, dict):
        holder[CAUGHT] = sys.exc_info()[1]


def _connect_caught() -> None:
    from django.core.signals import got_request_exception

    got_request_exception.connect(_django_caught, weak=False, dispatch_uid="devserver.apps.devmode")


def _django_serves_static() -> bool:
    """What runserver decides: with ``DEBUG`` and staticfiles (and no whitenoise), /static/ from every app's static/."""
    from django.conf import settings

    return (settings.DEBUG and "django.contrib.staticfiles" in settings.INSTALLED_APPS
            and "whitenoise.runserver_nostatic" not in settings.INSTALLED_APPS)


def _django(app: App) -> App:
    _connect_caught()
    if _django_serves_static():
        from django.contrib.staticfiles.handlers import StaticFilesHandler

        return StaticFilesHandler(app)  # runserver's --nostatic off
    return app


def _django_asgi(app: App) -> App:
    _connect_caught()
    if _django_serves_static():
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        return ASGIStaticFilesHandler(app)
    return app


# The class (module.qualname, anywhere in the app's MRO) → what development mode sets on its apps.
FRAMEWORKS: dict[str, Callable[[App], App]] = {
    "flask.app.Flask": _flask,
    "quart.app.Quart": _flask,  # Flask's config, on asyncio
    "bottle.Bottle": _bottle,
    "falcon.app.App": _falcon,
    "django.core.handlers.wsgi.WSGIHandler": _django,
    "django.core.handlers.asgi.ASGIHandler": _django_asgi,
}


def django_set_up() -> bool:
    """True if Django's app registry is populated (``django.setup()`` ran here): the project is Django's."""
    registry = getattr(sys.modules.get("django.apps"), "apps", None)
    return bool(getattr(registry, "ready", False))


def framework_of(app: object) -> Callable[[App], App] | None:
    for cls in type(app).__mro__:
        develop_app = FRAMEWORKS.get(f"{cls.__module__}.{cls.__qualname__}")
        if develop_app is not None:
            return develop_app
    return None


def develop(app: App) -> App:
    """``app`` set up for development (the same object, or a wrapper around it); any other app as it is."""
    develop_app = framework_of(app)
    return app if develop_app is None else develop_app(app)
