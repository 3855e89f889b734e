"""TLS on an accepted connection: its first byte read, then asyncio's TLS transport, or a plain answer.

Stands in for the acceptor's transport maker (same call), so the plain
server's accept path has no test of its own for TLS.  A connection that
starts with a handshake record gets ``loop.connect_accepted_socket`` with
the context (a task per connection, as ``create_server`` does; the protocol
gets ``connection_made`` once the handshake is done); one that starts with
a request line gets tls/plain.py's 400 and is closed.  A failed handshake
(an untrusted CA, a scanner, a timeout) is one line in the log, never a
traceback, and the worker goes on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from devserver.tls.plain import https_answer, is_tls

PEEK = 4096  # enough of a plain request for its request line and Host
# Connection.eof_received keeps the connection open to answer a half-closed client; TLS cannot half-close,
# asyncio closes it anyway and says so on every such connection: a warning about nothing the user can act on.
HALF_CLOSE_WARNING = "returning true from eof_received() has no effect when using ssl"


def _not_half_close(record: logging.LogRecord) -> bool:
    return record.getMessage() != HALF_CLOSE_WARNING


class TLSGate:
    def __init__(self, loop: asyncio.AbstractEventLoop, context: ssl.SSLContext, timeout: float, port: int,
                 log: Callable[[str], None], allows: Callable[[str], bool] | None = None) -> None:
        self._loop = loop
        self._context = context
        self._timeout = timeout
        self._port = port
        self._log = log
        self._allows = allows
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to its tasks
        logging.getLogger("asyncio").addFilter(_not_half_close)

    def take(self, sock: socket.socket, protocol: asyncio.Protocol, *, extra: dict[str, object]) -> None:
        """Serve ``sock`` over TLS with ``protocol`` once its first bytes arrive (within the header timeout)."""
        expiry = self._loop.call_later(self._timeout, self._give_up, sock)
        self._loop.add_reader(sock.fileno(), self._first_bytes, sock, protocol, extra, expiry)

    def _give_up(self, sock: socket.socket) -> None:
        if sock.fileno() != -1:
            self._loop.remove_reader(sock.fileno())
            sock.close()

    def _first_bytes(self, sock: socket.socket, protocol: asyncio.Protocol, extra: dict[str, object],
                     expiry: asyncio.TimerHandle) -> None:
        try:
            first = sock.recv(PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        self._loop.remove_reader(sock.fileno())
        expiry.cancel()
        if is_tls(first):
            task = self._loop.create_task(self._handshake(sock, protocol, extra))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if first:
            try:
                sock.recv(len(first))  # read, so the close is a FIN and the answer is not lost to a reset
                sock.send(https_answer(first, self._port, self._allows))
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        sock.close()

    async def _handshake(self, sock: socket.socket, protocol: asyncio.Protocol, extra: dict[str, object]) -> None:
        sock.setblocking(False)
        try:
            await self._loop.connect_accepted_socket(lambda: protocol, sock, ssl=self._context,
                                                     ssl_handshake_timeout=self._timeout)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            peer = extra.get("peername")
            who = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "a client"
            self._log(f"TLS handshake with {who} failed: {reason}")
            sock.close()
