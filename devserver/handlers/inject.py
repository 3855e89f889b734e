"""Live reload for the HTML an APP returns, whatever its body is made of.

Flask answers with a ``ClosingIterator``, Django with an ``HttpResponse``,
others with generators: only a list reaches the server's own list-body
transform.  This WSGI middleware holds a ``text/html`` answer (up to
:data:`LIMIT` bytes), adds the live-reload script to a full document (never
to a fragment, which some page's script may insert into another), fixes
``Content-Length`` and sends it on.  Bodies that are larger, compressed, or
not HTML pass through untouched and unbuffered, chunk by chunk as the app
yields them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType

from devserver.handlers.livereload import SCRIPT_URL, inject_app
from devserver.handlers.wsgi import WSGIApp, plain_html

LIMIT = 1024 * 1024  # bytes of HTML held to add the script; beyond, pass through
NO_BODY_STATUSES = frozenset({"204", "304"})
DOCUMENT_STARTS = (b"<!doctype html", b"<html")
SCRIPT_SRC = f'src="{SCRIPT_URL}"'.encode()  # the script is there already, however it is marked

StartResponse = Callable[..., Callable[[bytes], object]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | None  # start_response's third argument


def is_document(body: bytes) -> bool:
    """True for a whole HTML page (doctype or <html> first), not a fragment."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    while head.startswith(b"<!--"):  # a leading comment, as some templates start with
        end = head.find(b"-->")
        if end < 0:
            return False
        head = head[end + 3:].lstrip()
    return head.startswith(DOCUMENT_STARTS)


def add_script(body: bytes) -> bytes:
    """``body`` with the live-reload script, marked as an app's page, if it is a full document without one."""
    if not is_document(body) or SCRIPT_SRC in body:
        return body
    return inject_app(body)


def wants_script(status: str, headers: list[tuple[str, str]]) -> bool:
    if status[:3] in NO_BODY_STATUSES or status[:1] == "1" or not plain_html(headers):
        return False
    lengths = [value for name, value in headers if name.lower() == "content-length"]
    length = lengths[-1].strip() if lengths else ""  # the last one, as a dict of the headers would keep
    return not (length.isdigit() and int(length) > LIMIT)


class _Held:
    """start_response for the app: decides pass-through or hold, per response."""

    def __init__(self, start_response: StartResponse) -> None:
        self.server_start = start_response
        self.mode: str | None = None  # None until the app starts its response; "pass" or "hold"
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.exc_info: ExcInfo = None
        self.chunks: list[bytes] = []  # held body, including what the app wrote with write()

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: ExcInfo = None) -> Callable[[bytes], object]:
        if self.mode == "pass":
            return self.server_start(status, headers, exc_info)
        if wants_script(status, headers):
            self.mode, self.status, self.headers, self.exc_info = "hold", status, list(headers), exc_info
            return self.chunks.append
        self.mode = "pass"
        return self.server_start(status, headers, exc_info)

    def release(self, body: bytes | None = None) -> None:
        """Start the real response: the held headers, with the new length if ``body`` changed."""
        headers = self.headers
        if body is not None:
            headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        self.mode = "pass"
        write = self.server_start(self.status, headers, self.exc_info)
        self.exc_info = None
        del write  # the rest of the body goes out as the returned iterable


class _Body:
    """The body handed to the server: chunks already read, then the rest; keeps the app's close()."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes], original: Iterable[bytes]) -> None:
        self._first = first
        self._rest = rest
        self._original = original

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        self._first = []
        yield from self._rest

    def close(self) -> None:
        close = getattr(self._original, "close", None)
        if close is not None:
            close()


def with_livereload(app: WSGIApp) -> WSGIApp:
    """``app`` whose full HTML pages carry the live-reload script."""

    def livereload_middleware(environ: dict[str, object], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "HEAD":
            return app(environ, start_response)
        held = _Held(start_response)
        result = app(environ, held.start_response)
        if held.mode == "pass" and not held.chunks:
            return result  # lists keep the server's whole-body fast path
        iterator = iter(result)
        try:
            while held.mode is None:  # start_response may come with the first chunk
                chunk = next(iterator, None)
                if chunk is None:
                    break
                held.chunks.append(chunk)
            if held.mode != "hold":
                return _Body(held.chunks, iterator, result)
            size = sum(map(len, held.chunks))
            for chunk in iterator:
                held.chunks.append(chunk)
                size += len(chunk)
                if size > LIMIT:  # too big to hold: send what we have and stream the rest
                    held.release()
                    return _Body(held.chunks, iterator, result)
        except BaseException:
            _Body([], iterator, result).close()
            raise
        body = b"".join(held.chunks)
        new = add_script(body)
        held.release(new if new is not body else None)
        return _Body([new], iter(()), result)

    livereload_middleware.__wrapped__ = app  # type: ignore[attr-defined]
    return livereload_middleware
