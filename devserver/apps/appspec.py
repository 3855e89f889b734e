"""Naming a WSGI app the way gunicorn, uvicorn and ``flask run`` do.

``APP`` is one of::

    pkg.module:attr               an attribute of the module
    pkg.module:factory()          a factory, called (again on every reload)
    pkg.module:factory('dev', debug=True)   literal arguments only
    pkg.module                    Flask's discovery: app, application, then create_app(), make_app()

Arguments are read with ``ast.literal_eval``: nothing in ``APP`` is ever
evaluated as code.  Every failure is an :class:`AppLoadError` whose message
is one line (what went wrong and where); the full traceback rides along for
the 500 page a worker shows.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import field
from types import ModuleType
from typing import TYPE_CHECKING, cast

from devserver.debug.tracebacks import import_report, one_line
from devserver.ipc.reports import ErrorReport
from devserver.kit.frozen import record

if TYPE_CHECKING:  # the CLI parses APP without importing the WSGI server
    from devserver.handlers.wsgi import WSGIApp

DISCOVERED_ATTRIBUTES = ("app", "application")
DISCOVERED_FACTORIES = ("create_app", "make_app")


class AppLoadError(Exception):
    """The app cannot be loaded; ``str()`` is one line for the user.

    ``kind`` is "spec" (APP is malformed), "missing" (module or attribute
    not there) or "failed" (importing the module or calling the factory
    raised: ``traceback`` holds the whole story).
    """

    def __init__(self, message: str, kind: str, traceback_text: str | None = None, module: str = "",
                 report: ErrorReport | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.traceback = traceback_text
        self.module = module
        self.report = report  # "failed": the user's frames, for the 500 page (tracebacks.import_report)


@record
class AppSpec:
    """A parsed ``APP``: the module, and what to take from it (None: discover)."""

    module: str
    attribute: str | None = None
    call: bool = False  # attribute is a factory to call
    args: tuple[object, ...] = ()  # literals (ast.literal_eval)
    kwargs: tuple[tuple[str, object], ...] = field(default_factory=tuple)
    text: str = ""

    def describe(self) -> str:
        if self.attribute is None:
            return self.module
        if not self.call:
            return f"{self.module}:{self.attribute}"
        params = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.module}:{self.attribute}({', '.join(params)})"


def _is_dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def parse(text: str, app_dir: str = ".") -> AppSpec:
    """Parse ``APP``; raises AppLoadError("spec") with a one-line reason."""
    module, sep, target = text.strip().partition(":")
    if module.endswith(".py"):  # `devserver app.py`, as `flask --app app.py` allows
        module = os.path.relpath(os.path.join(app_dir, module), app_dir)[:-3].replace(os.sep, ".")
        module = module.removesuffix(".__init__")
    if not _is_dotted(module):
        raise AppLoadError(f"APP must look like module, module:name or module:factory(), not {text!r}", "spec")
    if not sep:
        return AppSpec(module, text=text)
    try:
        node = ast.parse(target.strip(), mode="eval").body
    except SyntaxError:
        raise AppLoadError(f"{target!r} in APP {text!r} is not a name or a call like factory()", "spec") from None
    if isinstance(node, ast.Name):
        return AppSpec(module, node.id, text=text)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            kwargs = tuple((kw.arg, ast.literal_eval(kw.value)) for kw in node.keywords if kw.arg is not None)
        except ValueError:
            raise AppLoadError(f"the factory arguments in APP {text!r} must be literals (strings, numbers, ...)",
                               "spec") from None
        if len(kwargs) != len(node.keywords):
            raise AppLoadError(f"APP {text!r}: ** arguments are not supported", "spec")
        return AppSpec(module, node.func.id, True, args, kwargs, text=text)
    raise AppLoadError(f"{target!r} in APP {text!r} is not a name or a call like factory()", "spec")


def import_module(name: str) -> ModuleType:
    """Import ``name``; AppLoadError("missing") if it is not there, ("failed") if it raised."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise AppLoadError(f"no module named {exc.name!r} (looked in {os.getcwd()} and sys.path)", "missing",
                               traceback.format_exc(), name) from None
        raise AppLoadError(f"importing {name!r} failed: {one_line(exc)}", "failed",
                           traceback.format_exc(), name, import_report(exc)) from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise AppLoadError(f"importing {name!r} failed: {one_line(exc)}", "failed",
                           traceback.format_exc(), name, import_report(exc)) from None


def _call(spec: AppSpec, factory: Callable[..., object], args: tuple[object, ...], kwargs: dict[str, object]) -> object:
    try:
        return factory(*args, **kwargs)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise AppLoadError(f"calling {spec.module}:{getattr(factory, '__name__', 'factory')}() failed: "
                           f"{one_line(exc)}", "failed", traceback.format_exc(), spec.module,
                           import_report(exc)) from None


def resolve(spec: AppSpec, module: ModuleType) -> WSGIApp:
    """The WSGI callable that ``spec`` names in the imported ``module``."""
    if spec.attribute is None:
        target = _discover(spec, module)
    else:
        if not hasattr(module, spec.attribute):
            raise AppLoadError(f"module {spec.module!r} has no attribute {spec.attribute!r}", "missing",
                               module=spec.module)
        target = getattr(module, spec.attribute)
        if spec.call:
            if not callable(target):
                raise AppLoadError(f"{spec.module}:{spec.attribute} is not callable", "missing", module=spec.module)
            target = _call(spec, target, spec.args, dict(spec.kwargs))
    if not callable(target):
        raise AppLoadError(f"{spec.describe()} is a {type(target).__name__}, not a WSGI callable", "missing",
                           module=spec.module)
    return cast("WSGIApp", target)  # callable: what it does with (environ, start_response) is the app's


def _discover(spec: AppSpec, module: ModuleType) -> object:
    for name in DISCOVERED_ATTRIBUTES:
        value = getattr(module, name, None)
        if value is not None:
            if not callable(value):
                raise AppLoadError(f"{spec.module}.{name} is a {type(value).__name__}, not a WSGI callable",
                                   "missing", module=spec.module)
            return value
    for name in DISCOVERED_FACTORIES:
        factory = getattr(module, name, None)
        if factory is not None and callable(factory):
            return _call(spec, factory, (), {})
    names = ", ".join(DISCOVERED_ATTRIBUTES + tuple(f"{f}()" for f in DISCOVERED_FACTORIES))
    raise AppLoadError(f"module {spec.module!r} has none of {names}; name the app as {spec.module}:name",
                       "missing", module=spec.module)


def load(spec: AppSpec) -> WSGIApp:
    """Import the module and return the app (calling the factory)."""
    return resolve(spec, import_module(spec.module))


def put_on_path(app_dir: str) -> None:
    """The project folder first on sys.path, as gunicorn and uvicorn do with the current folder."""
    folder = os.path.realpath(app_dir)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
