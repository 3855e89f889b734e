"""SQL hooks: Django's execute wrappers, SQLAlchemy's dialects' DB-API calls, and sqlite3's and psycopg's DB-API
where neither runs.

The DB-API hook leaves out what Django and SQLAlchemy run through the driver (the frameworks' own hooks record
their statements, and their housekeeping, a connection's PRAGMAs, is not the app's): a statement is never
recorded twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Protocol, Self, TypeVar, overload

from devserver.kit import interpreter
from devserver.probes.patching import replace
from devserver.probes.recorder import Recorder, current
from devserver.probes.source import app_frame

if TYPE_CHECKING:
    import sqlite3
    from sqlite3 import _Parameters

    from sqlalchemy.engine.interfaces import DBAPICursor, Dialect

T = TypeVar("T")
_Cursor = TypeVar("_Cursor", bound="sqlite3.Cursor")


def _rows(cursor: object) -> int | None:
    count = getattr(cursor, "rowcount", -1)
    return count if isinstance(count, int) and count >= 0 else None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _first_row(rows: object) -> object:
    """An executemany's parameters as shown: its first row (none of an iterator, which the driver alone consumes)."""
    return rows[0] if isinstance(rows, Sequence) and rows else ()


# Django --------------------------------------------------------------------
# An execute wrapper's call: (sql, params, many, context), context holding the "connection" and the "cursor".
_Execute = Callable[[str, object, bool, dict[str, object]], object]


class _DjangoConnection(Protocol):
    """What is read of a Django database connection (Django is untyped here)."""

    execute_wrappers: list[Callable[[_Execute, str, object, bool, dict[str, object]], object]]


def _django_wrapper(execute: _Execute, sql: str, params: object, many: bool, context: dict[str, object]) -> object:
    recorder = current()
    if recorder is None:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    error = ""
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        error = _error(exc)
        raise
    finally:
        ms = (time.perf_counter() - started) * 1000
        shown = _first_row(params) if many else params
        recorder.query(sql, shown, started, ms, _rows(context.get("cursor")), app_frame(),
                       f"django:{getattr(context.get('connection'), 'alias', '')}", error)


def _django_connected(sender: object, connection: _DjangoConnection, **kwargs: object) -> None:
    if _django_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(_django_wrapper)


def install_django() -> None:
    from django.db import connections
    from django.db.backends.signals import connection_created

    connection_created.connect(_django_connected, weak=False, dispatch_uid="devserver.probes")
    for connection in connections.all(initialized_only=True):  # this thread's, connected before the hook
        _django_connected(None, connection)


# SQLAlchemy ----------------------------------------------------------------
# Recorded where the dialect hands a statement to the DB-API cursor (Dialect.do_execute, do_executemany,
# do_execute_no_params: SQLAlchemy's documented seam for that call), not by engine events: once an Engine has
# any listener, every statement goes through SQLAlchemy's event dispatch (about a hundred Python calls each, a
# third more CPU for a page of 8 queries), while a wrapper here adds one call.  And not by the driver's own hook
# (sqlite3's below): that sees only connections opened after it, and an app's engine opens, and pools, its
# first connection while the app is imported, before any hook is installed.  Every dialect is covered this way
# (none overrides do_execute; the few overriding do_executemany, psycopg2's, mysqldb's, are wrapped too when
# loaded by then, as an engine made at import loads its dialect): no engine needs events.
_SA_METHODS = ("do_execute", "do_executemany", "do_execute_no_params")


def _sa_housekeeping(context: object) -> bool:
    """Whether a statement is the dialect's own check on an engine's first connection (server version, default
    schema: PostgreSQL runs a few), not the app's: SQLAlchemy runs those on a Connection that may not begin a
    transaction (``_allow_autobegin``, False only there); where that attribute is gone, the checks are recorded."""
    return getattr(getattr(context, "root_connection", None), "_allow_autobegin", True) is False


def _sa_recording(name: str, original: Callable[..., None]) -> Callable[..., None]:
    many = name == "do_executemany"
    # (cursor, statement, parameters, context) but (cursor, statement, context) for do_execute_no_params
    at = 0 if name == "do_execute_no_params" else 1

    def recording(dialect: Dialect, cursor: DBAPICursor, statement: str, *args: object, **kwargs: object) -> None:
        recorder = current()
        if recorder is None or _sa_housekeeping(args[at] if len(args) > at else kwargs.get("context")):
            return original(dialect, cursor, statement, *args, **kwargs)
        started = time.perf_counter()
        error = ""
        try:
            return original(dialect, cursor, statement, *args, **kwargs)
        except Exception as exc:
            error = _error(exc)
            raise
        finally:
            ms = (time.perf_counter() - started) * 1000
            params = args[0] if at and args else ()
            recorder.query(statement, _first_row(params) if many else params, started, ms, None if error else _rows(cursor), app_frame(),
                           f"sqlalchemy:{dialect.name}", error)

    return recording


def _classes(root: type) -> list[type]:
    """``root`` and every subclass loaded now (the dialects of the engines the app created, a driver's cursors)."""
    found, todo = [], [root]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def install_sqlalchemy() -> None:
    from sqlalchemy.engine.default import DefaultDialect

    for cls in _classes(DefaultDialect):
        for name in _SA_METHODS:
            if name in vars(cls):
                replace(cls, name, _sa_recording(name, getattr(cls, name)))


# DB-API drivers: sqlite3, psycopg ------------------------------------------
FRAMEWORKS = ("django.", "sqlalchemy.")  # modules whose statements their own hooks record


def _from_framework(driver: str = "") -> bool:
    """Whether the statement comes from a framework's code: the first frame outside this module and outside the
    driver's own package (psycopg's ``Connection.execute`` calls its cursor's)."""
    frame: FrameType | None = interpreter.stack_frame(2)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module != __name__ and not (driver and module.startswith(driver)):
            return module.startswith(FRAMEWORKS)
        frame = frame.f_back
    return False


def _recorded(recorder: Recorder, cursor: object, run: Callable[[], T], sql: str, params: object,
              database: str = "sqlite3") -> T:
    started = time.perf_counter()
    error = ""
    try:
        return run()
    except Exception as exc:
        error = _error(exc)
        raise
    finally:
        recorder.query(sql, params, started, (time.perf_counter() - started) * 1000,
                       None if error else _rows(cursor), app_frame(3), database, error)


def install_sqlite3() -> None:
    """sqlite3.connect() hands out connections whose cursors record (a caller's own ``factory`` is left alone)."""
    import sqlite3

    class RecordingCursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: _Parameters = (), /) -> Self:
            recorder = current()
            if recorder is None or _from_framework():
                return super().execute(sql, parameters)
            return _recorded(recorder, self, lambda: super(RecordingCursor, self).execute(sql, parameters), sql, parameters)

        def executemany(self, sql: str, seq: Iterable[_Parameters], /) -> Self:
            recorder = current()
            if recorder is None or _from_framework():
                return super().executemany(sql, seq)
            rows = list(seq)
            return _recorded(recorder, self, lambda: super(RecordingCursor, self).executemany(sql, rows), sql,
                             rows[0] if rows else ())

    class RecordingConnection(sqlite3.Connection):
        @overload
        def cursor(self, factory: None = None) -> sqlite3.Cursor: ...
        @overload
        def cursor(self, factory: Callable[[sqlite3.Connection], _Cursor]) -> _Cursor: ...
        def cursor(self, factory: Callable[[sqlite3.Connection], sqlite3.Cursor] | None = None) -> sqlite3.Cursor:
            return super().cursor(factory or RecordingCursor)

        # Connection's own shortcuts make a plain cursor: these go through a recording one.
        def execute(self, sql: str, parameters: _Parameters = (), /) -> sqlite3.Cursor:
            return self.cursor().execute(sql, parameters)

        def executemany(self, sql: str, seq: Iterable[_Parameters], /) -> sqlite3.Cursor:
            return self.cursor().executemany(sql, seq)

    def recording(original: Callable[..., object]) -> Callable[..., object]:
        def connect(*args: object, **kwargs: object) -> object:
            if len(args) < 6 and "factory" not in kwargs:  # factory is the sixth parameter
                kwargs["factory"] = RecordingConnection
            return original(*args, **kwargs)

        return connect

    interpreter.replace_sqlite3_connect(recording, replace)


def _pg_text(query: object, cursor: object) -> str:
    """A psycopg query as text: a ``str``, ``bytes``, or a composed ``psycopg.sql`` object rendered for ``cursor``."""
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode(errors="replace")
    as_string = getattr(query, "as_string", None)
    try:
        return str(as_string(cursor)) if as_string is not None else repr(query)
    except Exception:  # noqa: BLE001 - shown as the object it is, the statement still runs
        return repr(query)


def _pg_params(many: bool, args: tuple[object, ...], kwargs: dict[str, object]) -> object:
    """The parameters shown of ``execute(query, params)`` / ``executemany(query, params_seq)``, as called."""
    given = args[0] if args else kwargs.get("params_seq" if many else "params")
    return _first_row(given) if many else given


def _pg_recording(name: str, original: Callable[..., T]) -> Callable[..., T]:
    many = name == "executemany"

    def recording(cursor: object, query: object, *args: object, **kwargs: object) -> T:
        recorder = current()
        if recorder is None or _from_framework("psycopg"):
            return original(cursor, query, *args, **kwargs)
        return _recorded(recorder, cursor, lambda: original(cursor, query, *args, **kwargs), _pg_text(query, cursor),
                         _pg_params(many, args, kwargs), "psycopg")

    return recording


def _pg_async_recording(name: str, original: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    many = name == "executemany"

    async def recording(cursor: object, query: object, *args: object, **kwargs: object) -> T:
        recorder = current()
        if recorder is None or _from_framework("psycopg"):
            return await original(cursor, query, *args, **kwargs)
        started = time.perf_counter()
        error = ""
        try:
            return await original(cursor, query, *args, **kwargs)
        except Exception as exc:
            error = _error(exc)
            raise
        finally:
            recorder.query(_pg_text(query, cursor), _pg_params(many, args, kwargs), started,
                           (time.perf_counter() - started) * 1000, None if error else _rows(cursor), app_frame(),
                           "psycopg", error)

    return recording


def install_psycopg() -> None:
    """psycopg 3's cursors record (their classes: connections opened before the hook are covered too)."""
    import psycopg

    for root, wrap in ((psycopg.Cursor, _pg_recording), (psycopg.AsyncCursor, _pg_async_recording)):
        for cls in _classes(root):
            for name in ("execute", "executemany"):
                if name in vars(cls):
                    replace(cls, name, wrap(name, getattr(cls, name)))
