"""Live reload for the HTML an ASGI app returns, by the rules of :mod:`devserver.handlers.inject`.

The ASGI counterpart of ``with_livereload``: a ``text/html`` answer of at
most :data:`~devserver.handlers.inject.LIMIT` bytes is held until its last
body event, the script is added to a full document (never to a fragment),
``Content-Length`` is fixed and it goes on.  Larger, compressed or non-HTML
bodies, streams (sent in parts with no ``Content-Length``: Starlette's
``StreamingResponse``), HEAD answers and other scopes pass through
untouched, event by event.
"""

from __future__ import annotations

from devserver.handlers.asgi import AppError, ASGIApp, Message, Receive, Scope, Send, bytes_field, header_pairs
from devserver.handlers.inject import LIMIT, add_script, wants_script


class _Held:
    """The app's ``send``: decides pass-through or hold, per response."""

    def __init__(self, send: Send) -> None:
        self.server_send = send
        self.start: Message | None = None  # held http.response.start
        self.chunks: list[bytes] = []
        self.size = 0

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start" and self.start is None and _wants_script(message):
            self.start = message
            return
        if kind != "http.response.body" or self.start is None:
            await self.server_send(message)
            return
        body = bytes_field(message)
        more = bool(message.get("more_body", False))
        if more and not self.chunks and not _has_length(self.start):
            # A stream (Starlette's StreamingResponse: parts, no length) goes out untouched, as it comes.
            await self._release(message)
            return
        self.chunks.append(body)
        self.size += len(body)
        if not more:
            whole = b"".join(self.chunks)
            new = add_script(whole)
            await self._release({"type": "http.response.body", "body": new}, len(new) if new is not whole else None)
        elif self.size > LIMIT:  # too big to hold: what we have, then the rest as it comes
            await self._release({"type": "http.response.body", "body": b"".join(self.chunks), "more_body": True})

    async def _release(self, body: Message, length: int | None = None) -> None:
        start, self.start, self.chunks = self.start, None, []
        assert start is not None
        if length is not None:
            headers = [(n, v) for n, v in header_pairs(start) if n.lower() != b"content-length"]
            start = {**start, "headers": [*headers, (b"content-length", str(length).encode())]}
        await self.server_send(start)
        await self.server_send(body)

    async def returned(self) -> None:
        """The app returned with a response still held: it goes on unfinished, as the app left it."""
        if self.start is not None:
            await self._release({"type": "http.response.body", "body": b"".join(self.chunks), "more_body": True})


def _has_length(start: Message) -> bool:
    return any(name.lower() == b"content-length" for name, _ in header_pairs(start))


def _wants_script(start: Message) -> bool:
    try:
        raw = header_pairs(start)
        # Most answers (JSON, text) are not HTML: told by their Content-Type without decoding every header.
        if not any(v[:9].lower() == b"text/html" for n, v in raw if n.lower() == b"content-type"):
            return False
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
    except AppError:
        return False  # the server refuses such headers itself
    return wants_script(str(start.get("status", "")), headers)


def with_livereload_asgi(app: ASGIApp) -> ASGIApp:
    """``app`` whose full HTML pages carry the live-reload script."""

    async def livereload_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") == "HEAD":
            await app(scope, receive, send)
            return
        held = _Held(send)
        await app(scope, receive, held.send)
        await held.returned()

    livereload_asgi.__wrapped__ = app  # type: ignore[attr-defined]
    return livereload_asgi
