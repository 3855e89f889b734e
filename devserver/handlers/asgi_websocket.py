"""An ASGI app's side of a WebSocket (the ``websocket`` scope of ASGI 3.0, spec version 2.4).

The app is called with the scope and ``receive``/``send``; this module turns
its messages into calls on two seams the worker provides: a ``Handshake``
(the HTTP connection, until the app accepts or refuses) and the ``Socket`` it
accepts into (devserver.worker.websocket).  What the app may send depends on
where the handshake stands, one table per state:

* connecting: ``websocket.accept`` (subprotocol, headers), ``websocket.close``
  (refused: 403), ``websocket.http.response.start`` (the denial response
  extension: the app's own status, headers and body);
* open: ``websocket.send`` (text or bytes), ``websocket.close`` (code, reason);
* denying: ``websocket.http.response.body`` until ``more_body`` is false.

Anything else is the app's mistake and raises in the app, as uvicorn does.
The app must accept, refuse or deny within ``timeout`` seconds of being
called (the worker's ``--header-timeout``): a handshake the app never
answers gets a 500 and the app is cancelled, so no client waits on it.  An
app that goes on after its socket was closed (by the client, or by the
server on a reload) is cancelled :data:`APP_GRACE` seconds later.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import unquote

from devserver.handlers.asgi import ASGIApp, Message, Scope, State, bytes_field, header_pairs, int_field, str_field
from devserver.http.parser import Request
from devserver.kit.frozen import record

APP_GRACE = 1.0  # seconds an app may run on once its WebSocket is closed
REFUSED = 403  # the app closed before accepting (ASGI: "the server must respond with HTTP 403")


def wants_websocket(request: Request) -> bool:
    """A GET asking to switch to the WebSocket protocol (RFC 6455 §4.1: ``Upgrade: websocket``)."""
    return "websocket" in request.upgrade and request.method == "GET"


@record
class Closed:
    """The end of a WebSocket: the close frame's code and reason (1006: no close frame)."""

    code: int
    reason: str


Incoming = str | bytes | Closed


class Socket(Protocol):
    """An accepted WebSocket (devserver.worker.websocket.WebSocket)."""

    @property
    def closed(self) -> Closed | None: ...
    async def receive(self) -> Incoming: ...
    async def send(self, message: str | bytes) -> None: ...
    def close(self, code: int = 1000, reason: str = "") -> None: ...


class Handshake(Protocol):
    """The upgrade request's HTTP connection, as far as the app's answer to the handshake needs it."""

    def accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> Socket: ...
    def refuse(self, status: int, message: str, detail: str | None = None) -> None: ...
    def respond(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...
    def respond_body(self, body: bytes, more: bool) -> None: ...


@record
class Outcome:
    """What became of the upgrade: the HTTP status answered (101: accepted), and the app's error if any."""

    status: int
    traceback: str | None = None
    error: str | None = None


def websocket_scope(request: Request, client: str, server: tuple[str, int], root_path: str = "",
                    state: State | None = None, *, secure: bool = False) -> Scope:
    """The ``websocket`` connection scope for an upgrade request."""
    host, _, port = client.rpartition(":")
    raw_path = request.path.encode("latin-1")
    offered = [value for name, value in request.headers if name.lower() == "sec-websocket-protocol"]
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": request.version,
        "scheme": "wss" if secure else "ws",
        "path": unquote(raw_path.decode("latin-1"), "utf-8", "replace") if b"%" in raw_path else request.path,
        "raw_path": raw_path,
        "query_string": request.query.encode("latin-1"),
        "root_path": root_path,
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers],
        "client": (host.strip("[]"), int(port)) if port.isdigit() else None,
        "server": server,
        "subprotocols": [part.strip() for value in offered for part in value.split(",") if part.strip()],
        "extensions": {"websocket.http.response": {}},
    }
    if state is not None:
        scope["state"] = dict(state)  # a shallow copy per connection, as for HTTP (lifespan's state)
    return scope


class _Session:
    """The app's receive and send for one connection, and where its handshake stands."""

    def __init__(self, handshake: Handshake) -> None:
        self.handshake = handshake
        self.socket: Socket | None = None
        self.connect_sent = False
        self.decided = asyncio.Event()  # accepted, refused or denied
        self.status = 0
        self.denying = False
        self.sends: dict[str, Callable[[Message], Awaitable[None]]] = {}
        self._state("connecting")

    def _state(self, name: str) -> None:
        self.sends = _SENDS[name](self)

    async def receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        await self.decided.wait()
        incoming = await self.socket.receive() if self.socket is not None else Closed(1006, "")
        if isinstance(incoming, Closed):
            return {"type": "websocket.disconnect", "code": incoming.code, "reason": incoming.reason}
        if isinstance(incoming, str):
            return {"type": "websocket.receive", "text": incoming}
        return {"type": "websocket.receive", "bytes": incoming}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        handler = self.sends.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} sent, after {self._where()}.")
        await handler(message)

    def _where(self) -> str:
        if self.socket is not None:
            return "the WebSocket was accepted" if self.socket.closed is None else "the WebSocket was closed"
        return "the handshake was answered" if self.decided.is_set() else "websocket.connect (the handshake)"

    # connecting
    async def _accept(self, message: Message) -> None:
        self.socket = self.handshake.accept(str_field(message, "subprotocol"), header_pairs(message))
        self.status = 101
        self._state("open")
        self.decided.set()

    async def _refuse(self, message: Message) -> None:
        self.handshake.refuse(REFUSED, "The app refused the WebSocket connection.")
        self.status = REFUSED
        self._state("done")
        self.decided.set()

    async def _deny(self, message: Message) -> None:
        self.status = int_field(message, "status")
        self.handshake.respond(self.status, header_pairs(message))
        self.denying = True
        self._state("denying")
        self.decided.set()

    # denying
    async def _deny_body(self, message: Message) -> None:
        more = bool(message.get("more_body", False))
        self.handshake.respond_body(bytes_field(message), more)
        if not more:
            self.denying = False
            self._state("done")

    # open
    async def _send(self, message: Message) -> None:
        assert self.socket is not None
        text, data = str_field(message, "text"), message.get("bytes")
        if (text is None) == (data is None):
            raise RuntimeError("websocket.send needs exactly one of 'text' and 'bytes'.")
        await self.socket.send(text if text is not None else bytes_field(message, "bytes"))

    async def _close(self, message: Message) -> None:
        assert self.socket is not None
        self.socket.close(int_field(message, "code", 1000), str_field(message, "reason") or "")


# What the app may send in each state of the handshake, and what each does.
_SENDS: dict[str, Callable[[_Session], dict[str, Callable[[Message], Awaitable[None]]]]] = {
    "connecting": lambda s: {"websocket.accept": s._accept, "websocket.close": s._refuse,
                             "websocket.http.response.start": s._deny},
    "open": lambda s: {"websocket.send": s._send, "websocket.close": s._close},
    "denying": lambda s: {"websocket.http.response.body": s._deny_body},
    "done": lambda s: {},
}


async def serve(app: ASGIApp, scope: Message, handshake: Handshake, timeout: float) -> Outcome:
    """Run ``app`` on one upgrade request until it returns or its socket is closed (bounded, see the module)."""
    session = _Session(handshake)
    task = asyncio.ensure_future(app(scope, session.receive, session.send))
    decided = asyncio.ensure_future(session.decided.wait())
    try:
        await asyncio.wait((task, decided), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        decided.cancel()
    if not session.decided.is_set():
        return await _unanswered(task, handshake, timeout)
    failure = await _run_out(task, session)
    if session.socket is not None:
        session.socket.close(1011 if failure is not None else 1000)  # a no-op when already closed
    elif session.denying:  # the denial's body never ended: the connection cannot be reused
        handshake.respond_body(b"", False)
    return Outcome(session.status, failure)


async def _unanswered(task: asyncio.Future[None], handshake: Handshake, timeout: float) -> Outcome:
    """The app returned, raised or timed out without answering the handshake: a 500 from the server."""
    if not task.done():
        task.cancel()
        message = f"The app did not accept or refuse the WebSocket within {timeout:g} s."
        handshake.refuse(500, message)
        await asyncio.wait((task,))
        return Outcome(500, None, message)
    exc = task.exception()
    if exc is None:
        message = "The app returned without accepting or refusing the WebSocket."
        handshake.refuse(500, message)
        return Outcome(500, None, message)
    detail = "".join(traceback.format_exception(exc))
    handshake.refuse(500, f"The app raised {type(exc).__name__} during the WebSocket handshake.", detail)
    return Outcome(500, detail)


async def _run_out(task: asyncio.Future[None], session: _Session) -> str | None:
    """Wait for the app once it answered the handshake; cancel it APP_GRACE after its socket closed.

    Returns the app's traceback if it raised (a send on a closed socket, ConnectionError, is how an app
    learns that it was closed: not a failure).
    """
    while not task.done():
        done, _ = await asyncio.wait((task,), timeout=APP_GRACE)
        socket = session.socket
        if not done and (socket is None or socket.closed is not None):
            done, _ = await asyncio.wait((task,), timeout=APP_GRACE)
            if not done:
                task.cancel()
                await asyncio.wait((task,))
    if task.cancelled():
        return None
    exc = task.exception()
    if exc is None or isinstance(exc, ConnectionError):
        return None
    return "".join(traceback.format_exception(exc))
