"""Rich error reports: the traceback from the app's first frame, with source and locals, and the request.

Built in the worker when an app raises (:func:`report`), carried to the
dashboard in the ``RequestEvent`` (a frozen, picklable :class:`ErrorReport`)
and rendered as HTML for the 500 page (:func:`report_html`).

* Frames of the server itself (this package, the thread pool, importlib)
  before the first frame of the app are folded into a count.
* Locals are shortened by ``reprlib``; values of names that look secret
  (password, token, secret, key, cookie, authorization, session …), and
  such entries inside dicts (the WSGI environ's ``HTTP_COOKIE``), are masked.
* Nothing here evaluates anything: the page is static HTML.
"""

from __future__ import annotations

import linecache
import os
import re
import reprlib
import traceback
from collections.abc import Mapping
from html import escape
from types import FrameType
from typing import IO, cast
from urllib.parse import parse_qsl

from devserver.ipc.reports import ErrorReport, Frame

SECRET = re.compile(r"pass(word|wd)?|pwd|token|secret|key|cookie|authori[sz]ation|session|csrf|credential|signature",
                    re.IGNORECASE)
MASK = "********"
CONTEXT = 3  # source lines shown each side of the current one
MAX_FRAMES = 40
MAX_LOCALS = 40
FORM_LIMIT = 64 * 1024

CURRENT = ' class="cur"'
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # devserver/, not debug/
_SERVER_MODULES = ("importlib", "concurrent", "threading", "asyncio")


class _Masking(reprlib.Repr):
    """``reprlib`` with dict entries under secret-looking keys masked."""

    def __init__(self) -> None:
        super().__init__()
        self.maxstring = 120
        self.maxother = 120
        self.maxlist = self.maxtuple = self.maxset = self.maxdict = 8
        self.maxlevel = 3

    def repr_dict(self, x: Mapping[object, object], level: int) -> str:
        masked = {k: (MASK if isinstance(k, str) and SECRET.search(k) else v) for k, v in x.items()}
        return super().repr_dict(masked, level)

    def repr1(self, x: object, level: int) -> str:
        if x == MASK and isinstance(x, str):
            return MASK
        return super().repr1(x, level)


_repr = _Masking()


def short_repr(name: str, value: object) -> str:
    """``value`` shortened for display, masked when ``name`` looks secret; never raises."""
    if SECRET.search(name):
        return MASK
    try:
        return _repr.repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not hide the report
        return f"<repr failed: {type(exc).__name__}>"


def _is_server(filename: str) -> bool:
    if filename.startswith(_PACKAGE):
        return True
    parts = filename.replace("\\", "/").split("/")
    return filename.startswith("<frozen") or any(p in _SERVER_MODULES for p in parts[-3:-1])


def _frame(frame: FrameType, lineno: int) -> Frame:
    filename = frame.f_code.co_filename
    source = _source_around(filename, lineno, frame.f_globals)
    # A module's "locals" are its globals: imports and dunders, noise rather than state.
    names = [] if frame.f_code.co_name == "<module>" else list(frame.f_locals.items())[:MAX_LOCALS]
    return Frame(filename, lineno, frame.f_code.co_name, source, tuple((k, short_repr(k, v)) for k, v in names))


RequestFields = tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]  # method, target, headers, form
NO_REQUEST: RequestFields = ("", "", (), ())


def _request(environ: Mapping[str, object]) -> RequestFields:
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.removeprefix("HTTP_").replace("_", "-").title()
            headers.append((name, MASK if SECRET.search(name) else str(value)))
    form: list[tuple[str, str]] = []
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        try:  # the body is a seekable spool: read it again from the start
            stream = cast("IO[bytes]", environ["wsgi.input"])
            stream.seek(0)
            data = stream.read(FORM_LIMIT).decode("latin-1")
            form = [(k, MASK if SECRET.search(k) else v) for k, v in parse_qsl(data, keep_blank_values=True)]
        except (AttributeError, KeyError, OSError, ValueError):
            form = []
    query = environ.get("QUERY_STRING", "")
    target = environ.get("RAW_URI") or str(environ.get("PATH_INFO", "")) + (f"?{query}" if query else "")
    return str(environ.get("REQUEST_METHOD", "")), str(target), tuple(headers), tuple(form)


def _is_importlib(filename: str) -> bool:
    """The import machinery's own frames, which sit between an importing module and the one it imports."""
    return filename.startswith("<frozen importlib") or filename.replace("\\", "/").endswith("/importlib/__init__.py")


def app_frames(exc: BaseException, *, server_frames: bool = True) -> tuple[list[tuple[FrameType, int]], int]:
    """The frames of ``exc``'s traceback from the app's first one (at most ``MAX_FRAMES``, newest last),
    with their line numbers, and how many were left out.

    The import machinery's frames are left out wherever they are.  The raising frame is kept even if it
    is the server's, unless ``server_frames`` is False (an import error: a SyntaxError is raised by the
    import machinery, and its place is the line that does not compile, see :func:`import_report`).
    The report's frames and the console's (devserver.debug.failures) come from here, so an index into the
    report's frames names the same frame in the worker.
    """
    walked = list(traceback.walk_tb(exc.__traceback__))
    folded = 0
    while folded < len(walked) - (1 if server_frames else 0) and _is_server(walked[folded][0].f_code.co_filename):
        folded += 1
    kept = [(frame, lineno) for frame, lineno in walked[folded:] if not _is_importlib(frame.f_code.co_filename)]
    if not kept and server_frames and walked:
        kept = walked[-1:]
    kept = kept[-MAX_FRAMES:]
    return kept, len(walked) - len(kept)


def _chain(exc: BaseException) -> str:
    if exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        return "".join(traceback.format_exception(exc))
    return ""


def report(exc: BaseException, environ: Mapping[str, object] | None = None) -> ErrorReport:
    """The report of ``exc`` (being handled now, or caught), for the request in ``environ``."""
    kept, folded = app_frames(exc)
    method, target, headers, form = _request(environ) if environ is not None else NO_REQUEST
    return ErrorReport(
        exception="".join(traceback.format_exception_only(type(exc), exc)).strip(),
        frames=tuple(_frame(frame, lineno) for frame, lineno in kept),
        folded=folded,
        chained=_chain(exc),
        method=method, target=target, headers=headers, form=form,
    )


def _source_around(filename: str, lineno: int, module_globals: dict[str, object] | None = None) -> tuple[tuple[int, str], ...]:
    linecache.checkcache(filename)
    return tuple(
        (n, linecache.getline(filename, n, module_globals).rstrip("\n"))
        for n in range(max(1, lineno - CONTEXT), lineno + CONTEXT + 1)
        if linecache.getline(filename, n, module_globals)
    )


def import_report(exc: BaseException) -> ErrorReport:
    """The report of a module that failed to import: the user's frames only, none of the server's or importlib's.

    A SyntaxError has no frame of its own (the import machinery raised it): its
    file and line come last, as Python's own traceback shows them.
    """
    kept, folded = app_frames(exc, server_frames=False)
    frames = [_frame(frame, lineno) for frame, lineno in kept]
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        frames.append(Frame(exc.filename, exc.lineno, "<module>", _source_around(exc.filename, exc.lineno), ()))
    return ErrorReport(
        exception=traceback.format_exception_only(type(exc), exc)[-1].strip(),
        frames=tuple(frames),
        folded=folded,
        chained=_chain(exc),
    )


def _where(exc: BaseException) -> str:
    """`` (file.py:12)`` for the innermost frame of ``exc``, or ''."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({os.path.basename(exc.filename)}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" ({os.path.basename(last.filename)}:{last.lineno})"


def one_line(exc: BaseException) -> str:
    """``exc`` as one line for the user: its type and message, then where it was raised."""
    text = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return " ".join(text.split()) + _where(exc)


def report_text(r: ErrorReport) -> str:
    """The report as plain text (for the dashboard; escape it before display)."""
    out = []
    if r.folded:
        out.append(f"({r.folded} server frame{'s' if r.folded != 1 else ''} folded)")
    for f in r.frames:
        out.append(f'File "{f.filename}", line {f.lineno}, in {f.function}')
        for n, text in f.source:
            out.append(f"{'→' if n == f.lineno else ' '} {n:>5} │ {text}")
        for name, value in f.locals:
            out.append(f"        {name} = {value}")
        out.append("")
    out.append(r.exception)
    return "\n".join(out)


def report_html(r: ErrorReport) -> str:
    """The report as an HTML fragment for the 500 page (every value escaped; no script)."""
    parts = [f"<h2 class=\"exc\">{escape(r.exception)}</h2>"]
    if r.folded:
        parts.append(f"<p class=\"folded\">{r.folded} server frame{'s' if r.folded != 1 else ''} folded</p>")
    for f in reversed(r.frames):  # the raising frame first, as Django does
        lines = "".join(
            f'<li value="{n}"{CURRENT if n == f.lineno else ""}><code>{escape(text)}</code></li>' for n, text in f.source
        )
        local_rows = "".join(f"<tr><th>{escape(k)}</th><td><code>{escape(v)}</code></td></tr>" for k, v in f.locals)
        parts.append(
            f"<section class=\"frame\"><h3><code>{escape(f.filename)}</code>, line {f.lineno}, "
            f"in <code>{escape(f.function)}</code></h3><ol class=\"src\">{lines}</ol>"
            + (f"<details><summary>Local variables ({len(f.locals)})</summary><table>{local_rows}</table></details>"
               if f.locals else "")
            + "</section>"
        )
    if r.method:
        headers = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in r.headers)
        form = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in r.form)
        parts.append(f"<h2>Request</h2><p><code>{escape(r.method)} {escape(r.target)}</code></p>"
                     f"<h3>Headers</h3><table>{headers}</table>"
                     + (f"<h3>Form fields</h3><table>{form}</table>" if form else ""))
    if r.chained:
        parts.append(f"<h2>Full traceback</h2><pre>{escape(r.chained)}</pre>")
    return "".join(parts)


REPORT_CSS = (
    ".exc{color:#b00}.folded{color:#777}.frame{border:1px solid #ddd;margin:1em 0;padding:.5em 1em}"
    ".frame h3{font-size:1em;margin:.3em 0}.src{background:#f6f6f6;padding:.5em 0 .5em 4em;margin:0}"
    ".src li{white-space:pre}.src .cur{background:#fdd}table{border-collapse:collapse}"
    "th,td{text-align:left;vertical-align:top;padding:2px 8px;border-bottom:1px solid #eee}"
)
