"""An app's exception as it crosses from the worker to the supervisor: built by debug/tracebacks.py, shown by the pages, the log and the dashboard."""

from __future__ import annotations

from devserver.kit.frozen import record


@record
class Frame:
    """One frame: where, the source around the line, and its locals (already shortened and masked)."""

    filename: str
    lineno: int
    function: str
    source: tuple[tuple[int, str], ...]  # (line number, text) around ``lineno``
    locals: tuple[tuple[str, str], ...]


@record
class ErrorReport:
    """An exception as the developer wants to see it, and the request that raised it."""

    exception: str  # "KeyError: 'name'"
    frames: tuple[Frame, ...]  # from the app's first frame to the one that raised
    folded: int  # server frames left out before the first app frame
    method: str = ""
    target: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    chained: str = ""  # the text of a __cause__/__context__ chain, if any
