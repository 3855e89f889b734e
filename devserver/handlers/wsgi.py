"""The server side of PEP 3333: environ, start_response, and running an app.

The app runs in a worker thread (so a slow app never holds up the event
loop); body bytes it yields are handed to the loop as they come.  A list or
tuple body — the common case — comes back whole and is written at once with
a Content-Length.  A route whose calls have all been quick runs on the loop
instead, with no hand-off (worker/inline.py decides which).
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, TypeVar
from urllib.parse import unquote_to_bytes

from devserver.debug import failures, requestlogs, tracebacks
from devserver.handlers.exchange import ClientGone, Exchange, Responder
from devserver.ipc.reports import ErrorReport
from devserver.kit import interpreter
from devserver.kit.frozen import record
from devserver.kit.memo import MemoTable
from devserver.probes.recorder import recorded

WSGIApp = Callable[..., Iterable[bytes]]
T = TypeVar("T")

# The environ key under which a framework that answered a 500 itself leaves the exception it caught (apps/devmode.py).
CAUGHT = "devserver.caught_exception"


class Inline(Protocol):
    """Which calls the pool leaves to the loop (worker/inline.py InlinePolicy): asked before a call, told after it."""

    def inline(self, key: tuple[str, str], app: object) -> bool: ...
    def took(self, key: tuple[str, str], app: object, seconds: float, inline: bool) -> None: ...


class Pool(Protocol):
    """Runs a blocking call off the event loop (threadpool.ThreadPool)."""

    @property
    def inline(self) -> Inline: ...

    def submit(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]: ...
    def call(self, done: Callable[[Any, BaseException | None], None], fn: Callable[..., Any], *args: Any) -> None: ...
    def post(self, fn: Callable[..., None], *args: Any) -> bool: ...


@record
class WSGIServer:
    """What the server side of PEP 3333 needs from the worker, handed in once."""

    pool: Pool
    address: tuple[str, int]  # SERVER_NAME, SERVER_PORT
    multiprocess: bool
    log_line: Callable[[str], None]  # a line written to wsgi.errors
    html_transform: Callable[[bytes], bytes] | None  # applied to whole text/html bodies (live reload)
    request_detail: bool = True  # collect the lines the app writes per request (Config.request_detail)
    url_scheme: str = "http"  # "https" over TLS (Config.secure)
# Dropped from an app's headers.  Connection and Transfer-Encoding go on to framing.framing_of, which owns them:
# it writes its own, and an app's ``Connection: close`` closes the connection after the response.
HOP_BY_HOP = frozenset({"keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "upgrade"})
# Header names an app sent before and that were valid tokens, with their lower-case form: apps send the
# same few names on every response, and checking each character costs more than the rest of the check.
_checked_names: dict[str, str] = {}
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class AppError(Exception):
    """The application broke the WSGI contract (bad status or header)."""


class FileWrapper:
    """``wsgi.file_wrapper``: lets the server send a file with sendfile."""

    def __init__(self, filelike: BinaryIO, blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        if hasattr(self.filelike, "close"):
            self.filelike.close()


class ErrorStream:
    """``wsgi.errors``: each line written becomes a log event."""

    def __init__(self, emit_line: Callable[[str], None]) -> None:
        self._emit = emit_line
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._emit(line)
        return len(text)

    def writelines(self, seq: Iterable[str]) -> None:
        for text in seq:
            self.write(text)

    def flush(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def end_request(self) -> None:
        """Write out what the request left unfinished, here and in the app's own output (a print with end="")."""
        self.flush()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken stream is the app's business, not this request's
                pass


def _environ_key(name: str) -> str:
    """The environ key of a request header: CONTENT_TYPE, CONTENT_LENGTH, or HTTP_*; "" when dropped."""
    if "_" in name:
        # "X_Foo" and "X-Foo" map to one key, and "Content_Length" to CONTENT_LENGTH: a client could
        # spoof what a proxy set, or the body's length.  Dropped, as nginx and gunicorn do.
        key = ""
    else:
        key = name.upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
    return key


_environ_keys = MemoTable(_environ_key, 4096)  # header name → environ key ("" for a dropped name)


def build_environ(conn: Responder, exchange: Exchange, script_name: str, path_info: str,
                  errors: ErrorStream, server: WSGIServer) -> dict[str, Any]:
    """The WSGI environ for one request (PEP 3333 "environ Variables").

    ``path_info`` is still percent-encoded; it is decoded here to bytes and
    carried as latin-1 text, as PEP 3333 asks of "bytes-as-str".
    """
    request = exchange.request
    host, port = server.address
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        # Without a %, the text already is its bytes as latin-1 (the parser decoded the target so).
        "PATH_INFO": unquote_to_bytes(path_info.encode("latin-1")).decode("latin-1") if "%" in path_info else path_info,
        "QUERY_STRING": request.query,
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": f"HTTP/{request.version}",
        "SERVER_SOFTWARE": "devserver",
        "REMOTE_ADDR": conn.client.rpartition(":")[0].strip("[]"),
        "REMOTE_PORT": conn.client.rpartition(":")[2],
        "RAW_URI": request.target,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": server.url_scheme,
        "wsgi.input": exchange.input(),
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": server.multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
    }
    for name, value in request.headers:
        key = _environ_keys[name]
        if not key:
            continue
        if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
            environ[key] = value
            continue
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if request.chunked:
        # The body was read whole before the app runs, so its length is known (PEP 3333 wsgi.input).
        environ["CONTENT_LENGTH"] = str(exchange.body_size)
    return environ


@dataclass(slots=True)
class Outcome:
    """What the app thread hands back to the loop."""

    kind: str  # "whole" | "streamed" | "file" | "failed" | "aborted"
    status: int = 0
    headers: list[tuple[str, str]] | None = None
    body: bytes = b""
    file: Any = None
    traceback: str | None = None
    iterable: Any = None
    report: ErrorReport | None = None


class AppCall:
    """One call of a WSGI app, run in a pool thread, or on the loop (``inline``): then its writes go out at once."""

    def __init__(self, conn: Responder, exchange: Exchange, environ: dict[str, Any], pool: Pool,
                 inline: bool = False) -> None:
        self.conn = conn
        self.exchange = exchange
        self.environ = environ
        self.status = 0
        self.headers: list[tuple[str, str]] | None = None
        self.headers_sent = False
        self.took = 0.0  # seconds the app's call and its body took (run)
        if inline:
            self._post: Callable[..., object] = _now
            self._write: Callable[[bytes], None] = self._write_now
        else:
            self._post = pool.post
            self._write = conn.thread_writer(pool.post)

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.headers is not None:
            raise AssertionError("start_response called twice without exc_info")
        self.status, self.headers = self._check(status, headers)
        return self.write

    @staticmethod
    def _check(status: str, headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        code = status.split(" ", 1)[0]
        if not isinstance(status, str) or len(code) != 3 or not code.isdigit() or int(code) < 100:
            raise AppError(f"invalid status {status!r}")
        kept: list[tuple[str, str]] = []
        for name, value in headers:
            if not isinstance(name, str) or not isinstance(value, str):
                raise AppError(f"header {name!r}: names and values must be str")
            lname = _checked_names.get(name)
            if lname is None:
                if not name or not set(name) <= _TOKEN:
                    raise AppError(f"invalid header {name!r}: {value!r}")
                lname = name.lower()
                if len(_checked_names) < 4096:
                    _checked_names[name] = lname
            if "\r" in value or "\n" in value:
                raise AppError(f"invalid header {name!r}: {value!r}")
            if lname == "content-length" and not value.strip().isdigit():
                raise AppError(f"invalid Content-Length {value!r}")
            if lname in HOP_BY_HOP:
                continue  # the server owns connection management (PEP 3333 "Other HTTP Features")
            kept.append((name, value))
        return int(code), kept

    def write(self, data: bytes) -> None:
        """The legacy write() callable, also used for streamed bodies."""
        if self.headers is None:
            raise AssertionError("write() before start_response()")
        if not isinstance(data, bytes):
            raise AppError(f"the app must send bytes, not {type(data).__name__}")
        if self.headers_sent:
            if data:
                self._write(data)
            return
        if self.conn.closing:
            raise ClientGone("client disconnected")
        self.headers_sent = True
        # The head and the first bytes go out in one write, through the pool's ordered channel: a Flask or
        # Django body (an iterable, not a list) costs one send and no wake-up of its own.
        self._post(self._start_on_loop, data)

    def _start_on_loop(self, data: bytes) -> None:
        self.conn.start(self.status, self.headers or [], data)

    def _write_now(self, data: bytes) -> None:
        """write() on the loop: no gate to wait at (a quick call writes little), the client's loss seen at once."""
        if self.conn.closing:
            raise ClientGone("client disconnected")
        self.conn.write(data)

    def run(self, app: WSGIApp) -> Outcome:
        """Call the app and consume its body; never raises."""
        started = time.perf_counter()
        outcome = self._run(app)
        self.took = time.perf_counter() - started
        if self.status >= 500 and CAUGHT in self.environ:
            self._caught(outcome, self.environ[CAUGHT])
        return outcome

    def _run(self, app: WSGIApp) -> Outcome:
        try:
            iterable = app(self.environ, self.start_response)
        except BaseException:  # noqa: BLE001 - any app failure becomes a 500 page
            return self._failed()
        try:
            if self.headers is None and not isinstance(iterable, (list, tuple)):
                # start_response may legally be called on the first iteration.
                iterable = _prime(iterable)
            if self.headers is None:
                raise AppError("the app returned without calling start_response()")
            if not self.headers_sent:
                if isinstance(iterable, FileWrapper) and _has_fileno(iterable.filelike):
                    return Outcome("file", self.status, self.headers, file=iterable)
                if isinstance(iterable, (list, tuple)):
                    body = b"".join(iterable)
                    return Outcome("whole", self.status, self.headers, body=body)
            for data in iterable:
                self.write(data)
            if not self.headers_sent:
                return Outcome("whole", self.status, self.headers)
            return Outcome("streamed")
        except ClientGone:
            return Outcome("aborted")
        except BaseException:  # noqa: BLE001
            return self._failed()
        finally:
            if hasattr(iterable, "close") and not isinstance(iterable, FileWrapper):
                _close(iterable, self)
            elif isinstance(iterable, FileWrapper) and self.headers_sent:
                iterable.close()

    def _caught(self, outcome: Outcome, exc: Any) -> None:
        """The exception a framework caught and answered its own 500 page for (devmode.py): in the event too."""
        if isinstance(exc, BaseException):
            outcome.traceback = "".join(traceback.format_exception(exc))
            outcome.report = tracebacks.report(exc, self.environ)
            failures.keep(requestlogs.current_id(), exc)

    def _failed(self) -> Outcome:
        text = traceback.format_exc()  # travels in the RequestEvent, not wsgi.errors: shown once
        exc: BaseException = sys.exc_info()[1]  # type: ignore[assignment]
        rich = tracebacks.report(exc, self.environ)
        failures.keep(requestlogs.current_id(), exc)  # for the dashboard's console, under the dashboard only
        return Outcome("aborted" if self.headers_sent else "failed", traceback=text, report=rich)


def _now(fn: Callable[..., None], *args: object) -> bool:
    """An inline call's ``post``: on the loop already, so at once."""
    fn(*args)
    return True


def _prime(iterable: Iterable[bytes]) -> Iterable[bytes]:
    iterator = iter(iterable)
    try:
        first = next(iterator)
    except StopIteration:
        return []

    def chained() -> Iterable[bytes]:
        yield first
        yield from iterator

    chain = chained()
    if hasattr(iterable, "close"):
        return _Closing(chain, iterable)
    return chain


class _Closing:
    """Keeps the original iterable's close() after priming it."""

    def __init__(self, chain: Iterable[bytes], original: Any) -> None:
        self._chain = chain
        self.close = original.close

    def __iter__(self) -> Any:
        return iter(self._chain)


def _close(iterable: Any, call: AppCall) -> None:
    try:
        iterable.close()
    except BaseException:  # noqa: BLE001
        print(traceback.format_exc(), file=call.environ["wsgi.errors"], end="")


def _has_fileno(filelike: Any) -> bool:
    try:
        filelike.fileno()
        return hasattr(filelike, "seek")
    except (AttributeError, OSError, ValueError):
        return False


def start_wsgi(conn: Responder, exchange: Exchange, app: WSGIApp, script_name: str, path_info: str,
               server: WSGIServer, finished: Callable[[], None]) -> None:
    """Run ``app`` for the current request in the pool, answer when it returns, then call ``finished()``.

    The request path most requests take: no task and no future to wake, the
    answer is sent by the callback the pool runs on the loop with the batch
    of results it delivers (a file body still takes a task, for sendfile).
    """
    errors = ErrorStream(server.log_line)
    policy = server.pool.inline
    request = exchange.request
    key = (request.method, request.path)
    inline = policy.inline(key, app)
    call = AppCall(conn, exchange, build_environ(conn, exchange, script_name, path_info, errors, server), server.pool,
                   inline)
    exchange.logs = requestlogs.LineCollector() if server.request_detail else None

    def done(outcome: Outcome | None, error: BaseException | None) -> None:
        # Run after the writes the thread posted, if it streamed: the pool delivers in order.
        if outcome is None:  # call.run() never raises; this is a server bug, answered as one
            outcome = Outcome("failed", traceback="".join(traceback.format_exception(error)))
        else:
            policy.took(key, app, call.took, inline)
        sending = _answer(conn, exchange, outcome, server)
        if sending is None:
            finished()
        else:
            conn.loop.create_task(_finish_sending(sending, conn, exchange, finished))

    run = recorded(exchange, call.run)
    if inline:
        done(_run_inline(requestlogs.call_with, exchange.logs, run, app, errors.end_request), None)
    else:
        server.pool.call(done, requestlogs.call_with, exchange.logs, run, app, errors.end_request)


def _run_inline(fn: Callable[..., Outcome], *args: Any) -> Outcome:
    """``fn(*args)`` on the loop as a pool thread would run it: in a context of its own, with no running loop.

    A fresh context: what the app sets in context variables (Flask's, Werkzeug's) ends with the call, as it
    does in a thread that is handed the next request.  No running loop: an app that checks for one to refuse
    blocking work (Django's ``async_unsafe``, asgiref's ``async_to_sync``) or starts its own (``asyncio.run``)
    behaves as it does in the pool.
    """
    return interpreter.call_without_running_loop(contextvars.Context().run, fn, *args)


async def _finish_sending(sending: Awaitable[None], conn: Responder, exchange: Exchange, finished: Callable[[], None]) -> None:
    try:
        await sending
    except ClientGone:
        exchange.close = True
        if conn.current is exchange:
            conn.end()
    finally:
        finished()


def _answer(conn: Responder, exchange: Exchange, outcome: Outcome, server: WSGIServer) -> Awaitable[None] | None:
    """Send what the app answered; a file body is sent by the awaitable returned."""
    exchange.traceback = outcome.traceback
    exchange.report = outcome.report
    if outcome.kind == "failed":
        conn.send_error(500, "The application raised an exception.", outcome.traceback, report=outcome.report)
        conn.end()
    elif outcome.kind == "aborted":
        # Headers are gone: a 500 can no longer be sent, so the connection ends.
        exchange.close = True
        if exchange.status == 0:
            exchange.status = 500
        conn.abort()
        conn.end()
    elif outcome.kind == "whole":
        body = outcome.body
        headers = outcome.headers or []
        transform = server.html_transform
        if transform is not None and outcome.status == 200 and plain_html(headers):
            body = transform(body)  # apps' pages refresh on save too (live reload)
            # The app's length was that of the body before: framing announces this one's.
            headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
        conn.send(outcome.status, headers, body)
        conn.end()
    elif outcome.kind == "file":
        return _send_wrapped_file(conn, exchange, outcome)
    else:
        conn.finish()
    return None


def plain_html(headers: list[tuple[str, str]]) -> bool:
    """An uncompressed HTML body, which a script can be added to (whole bodies here, held ones in inject.py)."""
    html = False
    for name, value in headers:
        lname = name.lower()
        if lname == "content-encoding":
            return False
        if lname == "content-type":
            html = value.lower().startswith("text/html")
    return html


async def _send_wrapped_file(conn: Responder, exchange: Exchange, outcome: Outcome) -> None:
    """A ``wsgi.file_wrapper`` body by sendfile; the app's Content-Length, if any, is kept to (writer.py)."""
    wrapper: FileWrapper = outcome.file
    filelike = wrapper.filelike
    offset = filelike.tell()
    available = max(0, os.fstat(filelike.fileno()).st_size - offset)
    try:
        await conn.send_file(outcome.status, list(outcome.headers or []), filelike, offset, available)
    finally:
        wrapper.close()
    conn.end()


__all__ = ["AppError", "FileWrapper", "WSGIApp", "WSGIServer", "build_environ", "start_wsgi"]
