"""SQL hooks: Django's execute wrappers, SQLAlchemy's engine events, and sqlite3's DB-API where neither runs.

The DB-API hook leaves out what Django and SQLAlchemy run through the driver (the frameworks' own hooks record
their statements, and their housekeeping, a connection's PRAGMAs, is not the app's): a statement is never
recorded twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Protocol, Self, TypeVar, overload

from devserver.kit import interpreter
from devserver.probes.patching import replace
from devserver.probes.recorder import Recorder, current
from devserver.probes.source import app_frame

if TYPE_CHECKING:
    import sqlite3
    from sqlite3 import _Parameters

    from sqlalchemy.engine import Connection, ExceptionContext
    from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

T = TypeVar("T")
_Cursor = TypeVar("_Cursor", bound="sqlite3.Cursor")


def _rows(cursor: object) -> int | None:
    count = getattr(cursor, "rowcount", -1)
    return count if isinstance(count, int) and count >= 0 else None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


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
        shown = params[0] if many and isinstance(params, Sequence) and params else params  # executemany: the first row
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
# A statement's start travels on its execution context (one per statement), which both events are given.
_SA_STARTED = "_devserver_started"


def _sa_before(conn: Connection, cursor: DBAPICursor, statement: str, parameters: object,
               context: ExecutionContext | None, executemany: bool) -> tuple[str, object]:
    recorder = current()
    if recorder is not None and context is not None:
        setattr(context, _SA_STARTED, (recorder, time.perf_counter()))
    return statement, parameters  # retval=True: SQLAlchemy calls this as it is, with no adapter around it


def _sa_done(context: ExecutionContext, cursor: DBAPICursor | None, statement: str, parameters: object, executemany: bool,
             error: str) -> None:
    started_by: tuple[Recorder, float] | None = getattr(context, _SA_STARTED, None)
    if started_by is None:
        return
    setattr(context, _SA_STARTED, None)
    recorder, started = started_by
    ms = (time.perf_counter() - started) * 1000
    shown = parameters[0] if executemany and isinstance(parameters, Sequence) and parameters else parameters
    recorder.query(statement, shown, started, ms, None if error else _rows(cursor), app_frame(),
                   f"sqlalchemy:{context.dialect.name}", error)


def _sa_after(conn: Connection, cursor: DBAPICursor, statement: str, parameters: object, context: ExecutionContext,
              executemany: bool) -> None:
    _sa_done(context, cursor, statement, parameters, executemany, "")


def _sa_failed(exception_context: ExceptionContext) -> None:
    context = exception_context.execution_context
    if context is not None and exception_context.statement is not None:
        _sa_done(context, exception_context.cursor, exception_context.statement, exception_context.parameters, False,
                 _error(exception_context.original_exception))


def install_sqlalchemy() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", _sa_before, retval=True)
    event.listen(Engine, "after_cursor_execute", _sa_after)
    event.listen(Engine, "handle_error", _sa_failed)


# sqlite3 (DB-API) ----------------------------------------------------------
FRAMEWORKS = ("django.", "sqlalchemy.")  # modules whose statements their own hooks record


def _from_framework() -> bool:
    """Whether the statement comes from a framework's code (the first frame outside this module)."""
    frame: FrameType | None = interpreter.stack_frame(2)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame is not None and str(frame.f_globals.get("__name__", "")).startswith(FRAMEWORKS)


def _recorded(recorder: Recorder, cursor: object, run: Callable[[], T], sql: str, params: object) -> T:
    started = time.perf_counter()
    error = ""
    try:
        return run()
    except Exception as exc:
        error = _error(exc)
        raise
    finally:
        recorder.query(sql, params, started, (time.perf_counter() - started) * 1000,
                       None if error else _rows(cursor), app_frame(3), "sqlite3", error)


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
