"""Finding the app of a folder run with no ``APP``, as ``fastapi dev`` does.

The candidates, in order: ``main.py``, ``app.py``, ``api.py``, then the same
under ``app/``.  The first whose source, read with :mod:`ast` (nothing is
imported or run to decide), binds ``app``, ``application`` or ``api`` at its
top level, or else binds exactly one name to a known framework's app (a
call of ``FastAPI(...)``, ``Flask(...)``, ``get_asgi_application()``...), is
the app.  ``cli.py`` then checks it as it checks a named ``APP``.
"""

from __future__ import annotations

import ast
import os

from devserver.kit.frozen import record

CANDIDATES = ("main.py", "app.py", "api.py", "app/main.py", "app/app.py", "app/api.py")
NAMES = ("app", "application", "api")
# Calls that make an app object, by the called name (``fastapi.FastAPI(...)`` counts as ``FastAPI``).
APP_MAKERS = frozenset({"FastAPI", "Starlette", "Litestar", "Quart", "Flask", "Bottle", "App", "Sanic",
                        "get_asgi_application", "get_wsgi_application", "ASGIHandler", "WSGIHandler"})


@record
class Found:
    """An app found in a folder: ``app`` is what ``APP`` would say (``main:app``), ``file`` where it is."""

    app: str
    file: str

    def notice(self) -> str:
        return (f"no APP given: serving {self.app}, found in {self.file} "
                f"(to serve another, name it: devserver module:name)")


def _bound(tree: ast.Module) -> tuple[list[str], list[str]]:
    """The names the module's top level binds, and those of them bound to a call of an app maker."""
    names: list[str] = []
    made: list[str] = []
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)  # def application(environ, start_response), async def app(scope, ...)
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                names.append(target.id)
                if isinstance(value, ast.Call) and _called(value) in APP_MAKERS:
                    made.append(target.id)
    return names, made


def _called(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def app_in(path: str) -> str | None:
    """The name of the app the module at ``path`` defines, or None."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    names, made = _bound(tree)
    for name in NAMES:
        if name in names:
            return name
    distinct = list(dict.fromkeys(made))
    return distinct[0] if len(distinct) == 1 else None


def discover(folder: str) -> Found | None:
    """The app of ``folder``, or None when no candidate defines one."""
    for candidate in CANDIDATES:
        path = os.path.join(folder, candidate)
        if not os.path.isfile(path):
            continue
        name = app_in(path)
        if name is not None:
            module = candidate[:-3].replace("/", ".")
            return Found(f"{module}:{name}", candidate)
    return None
