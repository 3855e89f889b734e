"""Lines an app writes while serving a request, attached to that request.

The WSGI call runs in a pool thread under a context whose ``current``
collector belongs to the request (:func:`call_with`); the worker's stdout,
stderr and ``wsgi.errors`` hand every line to :func:`note`, which adds it to
the collector of the request being served by that thread (if any).  The
lines still go to the server log as before; the request event carries a
bounded copy, which the dashboard's detail screen shows.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
from collections.abc import Callable
from typing import TypeVar

MAX_LINES = 200
MAX_LINE = 2000  # characters kept of one line
Source = tuple[str, str, str]  # a line's level, logger name and "path:line" (RequestEvent.log_sources)
NO_SOURCE: Source = ("", "", "")  # a print() or a wsgi.errors write: no logging record made it

T = TypeVar("T")
A = TypeVar("A")


class LineCollector:
    """The first ``MAX_LINES`` lines of one request's output, and how many more there were."""

    __slots__ = ("dropped", "id", "lines", "sources")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.sources: list[Source] = []  # one per line of ``lines`` (appended together, by the same thread)
        self.dropped = 0
        self.id = f"{_pid_prefix}{next(_serial)}"  # names the request in JSON log lines

    def add(self, text: str, source: Source = NO_SOURCE) -> None:
        if len(self.lines) < MAX_LINES:  # list.append is atomic: threads of one request may share it
            self.lines.append(text[:MAX_LINE])
            self.sources.append(source)
        else:
            self.dropped += 1

    def snapshot_sources(self) -> tuple[Source, ...]:
        """Where each line of :meth:`snapshot` came from (the count line has no source)."""
        if not any(self.sources):
            return ()  # nothing logged through ``logging``: the event carries nothing more
        return (*self.sources, NO_SOURCE) if self.dropped else tuple(self.sources)

    def snapshot(self) -> tuple[str, ...]:
        """The lines for the request event (with a last line counting those left out)."""
        if self.dropped:
            return (*self.lines, f"… {self.dropped} more lines (see the server log)")
        return tuple(self.lines)


current: contextvars.ContextVar[LineCollector | None] = contextvars.ContextVar("devserver_request_lines",
                                                                                default=None)
# The logging record made last in this context, as (its message's first line, its Source): the handler that
# formats it writes the line to stderr next, and note() gives that line the record's source.
_pending: contextvars.ContextVar[tuple[str, Source] | None] = contextvars.ContextVar("devserver_log_record",
                                                                                     default=None)


_serial = itertools.count(1)
_pid_prefix = f"{os.getpid():x}-"  # an id names its process: a getpid() call per request cost a system call


def _forked() -> None:
    global _pid_prefix
    _pid_prefix = f"{os.getpid():x}-"


os.register_at_fork(after_in_child=_forked)


def current_id() -> str:
    """The id of the request the calling thread serves ("" outside one)."""
    collector = current.get()
    return collector.id if collector is not None else ""


def note(text: str) -> None:
    """Attach ``text`` to the request the calling thread serves, if any."""
    collector = current.get()
    if collector is not None:
        pending = _pending.get()
        # The message must be in the line: a record a handler filtered out must not name the next print().
        if pending is not None and pending[0] in text:
            _pending.set(None)
            collector.add(text, pending[1])
        else:
            collector.add(text)


def follow_logging(relative: Callable[[str], str]) -> None:
    """Give the lines ``logging`` writes during a request their record's level, logger and "path:line".

    A record factory, not a handler: the app's own handlers still format and write the line (to the
    worker's stderr, which notes it); the factory only remembers where the record was made.  ``relative``
    names a file relative to the project (probes.source.relative; "" for a library's, shown whole).
    Outside a request the factory only calls the one it wraps.
    """
    previous = logging.getLogRecordFactory()

    def record_factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if current.get() is not None:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # bad %-arguments: logging reports them when the record is formatted
                message = str(record.msg)
            where = f"{relative(record.pathname) or record.pathname}:{record.lineno}"
            _pending.set((message.split("\n", 1)[0], (record.levelname.lower(), record.name, where)))
        return record

    logging.setLogRecordFactory(record_factory)


def call_with(collector: LineCollector | None, fn: Callable[[A], T], arg: A,
              finish: Callable[[], None] | None = None) -> T:
    """Run ``fn(arg)``, then ``finish()``, with ``collector`` as the current request's (in a fresh context:
    threads are reused).

    ``finish`` writes out what the request left unfinished (a last ``wsgi.errors`` line without its
    newline): run here, that line still names its request; run later on the loop, it would name none.
    Without a collector (no one shows a request's lines: the text console) no context is made.
    """
    if collector is None:
        try:
            return fn(arg)
        finally:
            if finish is not None:
                finish()
    context = contextvars.Context()
    context.run(current.set, collector)
    try:
        return context.run(fn, arg)
    finally:
        if finish is not None:
            context.run(finish)
