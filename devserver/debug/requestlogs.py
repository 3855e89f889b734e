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
import os
from collections.abc import Callable
from typing import TypeVar

MAX_LINES = 200
MAX_LINE = 2000  # characters kept of one line

T = TypeVar("T")
A = TypeVar("A")


class LineCollector:
    """The first ``MAX_LINES`` lines of one request's output, and how many more there were."""

    __slots__ = ("dropped", "id", "lines")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped = 0
        self.id = f"{_pid_prefix}{next(_serial)}"  # names the request in JSON log lines

    def add(self, text: str) -> None:
        if len(self.lines) < MAX_LINES:  # list.append is atomic: threads of one request may share it
            self.lines.append(text[:MAX_LINE])
        else:
            self.dropped += 1

    def snapshot(self) -> tuple[str, ...]:
        """The lines for the request event (with a last line counting those left out)."""
        if self.dropped:
            return (*self.lines, f"… {self.dropped} more lines (see the server log)")
        return tuple(self.lines)


current: contextvars.ContextVar[LineCollector | None] = contextvars.ContextVar("devserver_request_lines",
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
        collector.add(text)


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
