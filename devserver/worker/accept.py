"""Accepting connections on a listening socket, each one handed straight to its protocol.

``loop.create_server`` starts a task per accepted connection, which waits on
a future for the transport to be ready: a coroutine, a task, a future and
two extra turns of the loop for every connection.  With ``Connection:
close`` that is every request.  Here the listening socket's readiness
accepts every connection waiting (up to ``batch``) and gives each its
transport at once; the transport calls ``connection_made`` on the next turn
of the loop as it would under a server.  Each socket is accepted as
``socket.accept`` makes it, less the enum members that makes of its family
and type on every read (kit/interpreter.py ``accepter``).

While it accepts, a worker also takes the keep-alive connections that the
workers a warm restart retires pass on (:mod:`devserver.worker.handoff`).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from devserver.kit import interpreter

if TYPE_CHECKING:
    import asyncio

    from devserver.worker.handoff import Handoff
    from devserver.worker.tlsgate import TLSGate

# Running out of descriptors or memory leaves the listening socket readable: accepting is paused this long
# rather than spinning on it (as asyncio's servers do).
RETRY_DELAY = 1.0
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# A connection that went away while it waited in the backlog: nothing to serve, go on with the next.
GONE = (BlockingIOError, InterruptedError)


class Acceptor:
    """Accepts on ``sock`` (non-blocking, listening) and gives each connection a transport for a new protocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol_factory: Callable[[], asyncio.Protocol], batch: int, handoff: Handoff | None = None,
                 tls: TLSGate | None = None) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._handoff = handoff
        self._factory = protocol_factory
        self._batch = max(1, batch)
        self._stopped = True
        self._accept = interpreter.accepter(sock)  # sock.accept, less the enum members it makes per connection
        # With --https the gate makes each transport (after the handshake): the plain path is unchanged.
        self._transport_for = tls.take if tls is not None else interpreter.transport_maker(loop)

    def start(self) -> None:
        self._sock.setblocking(False)
        self._stopped = False
        self._loop.add_reader(self._fd, self._ready)
        if self._handoff is not None:
            self._loop.add_reader(self._handoff.take_end.fileno(), self._adopt)

    def stop(self) -> None:
        """Accept no more: the connections already accepted carry on.

        This process's descriptor of the socket is closed (the supervisor
        keeps its own, so what waits in the queue goes to the next worker).
        Connections handed over wait for the next worker too.
        """
        if self._sock.fileno() == -1:
            return  # stopped already: the number may belong to another file by now
        self._stopped = True
        self._loop.remove_reader(self._fd)
        self._sock.close()
        if self._handoff is not None:
            self._loop.remove_reader(self._handoff.take_end.fileno())

    def _adopt(self) -> None:
        """Serve the connections a retiring worker handed over, as if just accepted."""
        assert self._handoff is not None
        for _ in range(self._batch):
            conn = self._handoff.take()
            if conn is None:
                return
            try:
                peer = conn.getpeername()
                conn.setblocking(False)
                self._transport_for(conn, self._factory(), extra={"peername": peer})
            except OSError:
                conn.close()  # the client went away meanwhile
            except Exception as exc:  # noqa: BLE001 - as in _ready
                conn.close()
                self._loop.call_exception_handler({"message": "could not take over a connection", "exception": exc})

    def _ready(self) -> None:
        accept = self._accept
        for _ in range(self._batch):
            try:
                conn, peer = accept()
            except GONE:
                return  # nothing (more) waiting
            except ConnectionAbortedError:
                continue  # reset by the client while it waited
            except OSError as exc:
                if exc.errno not in OUT_OF_RESOURCES:
                    raise  # the loop's exception handler reports it; the socket stays watched
                self._loop.remove_reader(self._fd)
                self._loop.call_later(RETRY_DELAY, self._retry)
                self._loop.call_exception_handler({"message": "accept() out of system resources", "exception": exc})
                return
            try:
                conn.setblocking(False)
                self._transport_for(conn, self._factory(), extra={"peername": peer})
            except Exception as exc:  # noqa: BLE001 - one connection's failure must not stop accepting
                conn.close()
                self._loop.call_exception_handler({"message": "could not set up an accepted connection",
                                                   "exception": exc})

    def _retry(self) -> None:
        if not self._stopped:
            self._loop.add_reader(self._fd, self._ready)
