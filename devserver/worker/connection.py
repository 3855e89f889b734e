"""One client connection in a worker: socket I/O around the protocol layer.

Bytes go to ``RequestParser``; complete requests wait in a queue and are
answered strictly in order (pipelining, RFC 9112 §9.3.2).  Handlers answer
through the ``Responder`` methods (``send``, ``start``/``write``/``finish``,
``send_file``); the framing of every response is decided and enforced by
writer.py, so this module only moves bytes.  The connection reaches its owner
through the small ``Handler`` protocol and never imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import BinaryIO, Protocol

from devserver.debug import capture
from devserver.handlers.exchange import ClientGone, Exchange
from devserver.handlers.pages import error_page
from devserver.http.framing import BodyWriter, frame
from devserver.http.parser import CONTINUE, Body, End, Head, Limits, Rejected, Request, RequestParser
from devserver.ipc.config import Config
from devserver.ipc.reports import ErrorReport

MAX_PIPELINE = 32  # queued requests before we stop reading
# Spooling a body to disk failed: the server's storage, not the request, is at fault.
# RFC 4918 §11.5 (507) for a full disk or quota; RFC 9110 §15.5.14 (413) for a file-size limit.
SPOOL_FAILURE_STATUS = {errno.ENOSPC: 507, errno.EDQUOT: 507, errno.EFBIG: 413}


class Handler(Protocol):
    """The connection's owner (the worker), as far as the connection needs it."""

    loop: asyncio.AbstractEventLoop
    limits: Limits
    config: Config
    draining: bool
    retiring: bool  # a warm restart replaces the worker: its idle connections go to the new workers

    def opened(self, conn: Connection) -> None: ...
    def closed(self, conn: Connection) -> None: ...
    def try_sync(self, conn: Connection, exchange: Exchange) -> bool: ...  # True: taken (answered, or held)
    async def handle(self, conn: Connection, exchange: Exchange) -> None: ...
    def record(self, conn: Connection, exchange: Exchange) -> None: ...
    def park(self, conn: Connection) -> bool: ...  # True: taken for the new workers (see Connection.park)


class Connection(asyncio.Protocol):
    """Reads requests, queues them, and runs their handlers one at a time.

    With ``Connection: close`` one is made per request, so making one is kept
    cheap: slots, and no thread primitive until a writer thread must wait.
    """

    __slots__ = ("worker", "loop", "parser", "transport", "client", "queue", "receiving", "current", "task", "held",
                 "closing", "eof", "reading_paused", "write_gate", "deadline", "deadline_status", "parked")

    def __init__(self, worker: Handler) -> None:
        self.worker = worker
        self.loop = worker.loop
        self.parser = RequestParser(worker.limits)
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.queue: deque[Exchange] = deque()
        self.receiving: Exchange | None = None
        self.current: Exchange | None = None
        self.task: asyncio.Task[None] | None = None
        self.held = False  # the current exchange is being answered off the loop (hold/release)
        self.closing = False
        self.eof = False
        self.reading_paused = False
        # Set while the transport takes more bytes; made by the first pause_writing (None: never paused).
        self.write_gate: threading.Event | None = None
        self.deadline = 0.0  # monotonic time after which the sweep acts
        self.deadline_status = 0  # 0: close silently; 408: answer then close
        self.parked = False  # not read, kept for the worker a warm restart hands it to (park)

    # asyncio callbacks ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if peer else ""
        self.worker.opened(self)
        self._set_idle(self.worker.config.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.worker.closed(self)
        if self.write_gate is not None:
            self.write_gate.set()  # wake a writer thread so it sees the loss
        if self.task is not None and not self.task.done() and self.current is None:
            self.task.cancel()
        for exchange in (*self.queue, self.receiving):
            # The current exchange's body may still be read by its app; end() closes it.
            if exchange is not None and exchange is not self.current and exchange.body is not None:
                exchange.body.close()
        self.queue.clear()
        self.receiving = None
        self.parser.close()

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent in full, then close."""
        self.eof = True
        if self.receiving is not None:
            if self.receiving.body is not None:
                self.receiving.body.close()
            self.receiving = None  # can never complete now
        if self.current is None and not self.queue:
            self.close()
        return True  # keep our side open for the responses still owed

    def pause_writing(self) -> None:
        if self.write_gate is None:
            self.write_gate = threading.Event()  # made clear: writer threads wait from now on
        else:
            self.write_gate.clear()

    def resume_writing(self) -> None:
        if self.write_gate is not None:
            self.write_gate.set()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        for event in self.parser.feed(data):
            if isinstance(event, Head):
                self._on_head(event.request)
            elif isinstance(event, Body):
                if self.receiving is not None and not self._add_body(event.data):
                    break  # refused: nothing after this is read
            elif isinstance(event, End):
                self._on_end()
            else:
                self._on_rejected(event)
        if self.parser.in_head and self.deadline_status == 0:
            self._set_deadline(self.worker.config.header_timeout, 408)
        elif self.receiving is not None:
            # A body that stops arriving is treated like a stalled head.
            self._set_deadline(self.worker.config.header_timeout, 408)
        if self.parser.upgraded and self.receiving is None and self.queue:
            self.queue[-1].close = True
        self._kick()

    # request bookkeeping ---------------------------------------------------
    def _on_head(self, request: Request) -> None:
        exchange = Exchange(request)
        exchange.capture = capture.begin(self.worker.config)
        if self.worker.draining:
            exchange.close = True
        self.receiving = exchange
        if request.expect_continue:
            self._maybe_continue(exchange)

    def _maybe_continue(self, exchange: Exchange) -> None:
        # 100 Continue may only go out when every earlier response has (RFC 9110 §10.1.1).
        if not exchange.continue_sent and self.current is None and not self.queue:
            exchange.continue_sent = True
            self.transport.write(CONTINUE)  # type: ignore[union-attr]

    def _add_body(self, data: bytes) -> bool:
        """Store body bytes; on a spool failure (disk full) queue an error answer and return False."""
        exchange = self.receiving
        assert exchange is not None
        try:
            exchange.add_body(data)
            return True
        except OSError as exc:
            body, exchange.body = exchange.body, None
            if body is not None:
                with contextlib.suppress(OSError):  # flushing what the failed write left buffered fails too
                    body.close()
            exchange.status = SPOOL_FAILURE_STATUS.get(exc.errno or 0, 500)
            exchange.error = f"The request body could not be stored: {exc.strerror or exc}"
            exchange.close = True
            self.receiving = None
            self.parser.rejected = True  # the rest of the body is never parsed
            self.queue.append(exchange)
            return False

    def _on_end(self) -> None:
        exchange, self.receiving = self.receiving, None
        if exchange is None:
            return
        self.queue.append(exchange)
        self.deadline = 0.0
        self.deadline_status = 0
        if len(self.queue) >= MAX_PIPELINE and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def _on_rejected(self, event: Rejected) -> None:
        self._refuse(event.error.status, event.error.message, event.line)

    def _refuse(self, status: int, message: str, line: bytes) -> None:
        """Queue an error answer from the server itself; nothing more is read.

        ``line`` is the refused request's first line as received: all that is
        known of it, shown in the log in place of a method and target.
        """
        if self.receiving is not None and self.receiving.body is not None:
            self.receiving.body.close()
        self.receiving = None
        self.parser.rejected = True
        exchange = Exchange(Request(method="-", target="-", version="1.1", headers=[], keep_alive=False,
                                    request_line=line.decode("latin-1")))
        exchange.error = message
        exchange.status = status
        self.queue.append(exchange)

    def _kick(self) -> None:
        while self.queue and self.task is None and not self.held:
            exchange = self.queue[0]
            if exchange.error is not None or not self.worker.try_sync(self, exchange):
                self.task = self.loop.create_task(self._serve())
                return
        if not self.queue and self.receiving is not None and self.receiving.request.expect_continue:
            self._maybe_continue(self.receiving)

    async def _serve(self) -> None:
        try:
            while self.queue and not self.closing:
                exchange = self.queue[0]
                if exchange.error is not None:
                    self.begin(exchange)
                    self.send_error(exchange.status, exchange.error, close=True)
                    self.end()
                else:
                    await self.worker.handle(self, exchange)
        except ClientGone:
            pass
        finally:
            self.task = None
        if not self.closing:
            self._kick()

    # the response side: handlers call these --------------------------------
    def begin(self, exchange: Exchange) -> None:
        """Make ``exchange`` (the head of the queue) the one being answered."""
        self.current = exchange

    def hold(self) -> None:
        """The current exchange is answered later, by a callback: answer nothing else until release()."""
        self.held = True

    def release(self) -> None:
        """The held exchange is answered: go on with the queue."""
        self.held = False
        if not self.closing:
            self._kick()

    def end(self) -> None:
        """The current response is complete: log it and move on."""
        exchange = self.current
        assert exchange is not None
        self.current = None
        if self.queue and self.queue[0] is exchange:
            self.queue.popleft()
        if exchange.body is not None:
            exchange.body.close()
        writer = exchange.writer
        if writer is not None:
            if writer.must_close:
                exchange.close = True
            exchange.error = exchange.error or writer.mismatch()
        self.worker.record(self, exchange)
        if exchange.close or self.closing or (self.eof and not self.queue):
            self.close()
            return
        if self.reading_paused and len(self.queue) < MAX_PIPELINE // 2:
            self.reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        if not self.queue and not self.parser.in_head and self.receiving is None:
            if self.worker.retiring and self.worker.park(self):
                return
            self._set_idle(self.worker.config.keepalive_timeout)

    def _open(self, status: int, headers: list[tuple[str, str]], body_length: int | None = None) -> BodyWriter:
        """Decide the current response's framing (writer.py) and account for its head."""
        exchange = self.current
        assert exchange is not None
        request = exchange.request
        framing = frame(status, headers, method=request.method, version=request.version, close=exchange.close,
                        body_length=body_length)
        writer = exchange.writer = BodyWriter(framing)
        exchange.close = framing.close
        exchange.status = status
        exchange.sent += len(framing.head)
        return writer

    def send(self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, close: bool = False) -> None:
        """A whole response in one write."""
        exchange = self.current
        assert exchange is not None
        if close:
            exchange.close = True
        writer = self._open(status, headers, len(body))
        body = writer.take(body)
        if exchange.capture is not None and body:
            exchange.capture.response.feed(body)  # what was sent: a body cut at its Content-Length is recorded cut
        data = writer.wire(body) + writer.end()
        exchange.sent += len(data)
        self.transport.write(writer.framing.head + data)  # type: ignore[union-attr]

    def send_error(self, status: int, message: str, detail: str | None = None, *, close: bool = False,
                   report: ErrorReport | None = None) -> None:
        """An HTML error page (``detail``: a traceback shown in dev mode; ``report``: the rich one)."""
        body = error_page(status, message, detail, report)
        self.send(status, [("Content-Type", "text/html; charset=utf-8")], body, close=close)

    async def send_file(self, status: int, headers: list[tuple[str, str]], file: BinaryIO, offset: int, length: int) -> None:
        """Headers, then up to ``length`` bytes of ``file`` from ``offset`` by sendfile.

        A Content-Length in ``headers`` is kept to: bytes past it are not sent,
        and a file that ends before it leaves the connection to be closed.
        """
        exchange = self.current
        assert exchange is not None
        writer = self._open(status, headers, length)
        allowed = writer.allowance(length)
        try:
            self.transport.write(writer.framing.head)  # type: ignore[union-attr]
            if allowed:
                if exchange.capture is not None:
                    exchange.capture.response.feed_file(file.fileno(), offset, allowed)
                sent = await self.loop.sendfile(self.transport, file, offset, allowed)  # type: ignore[arg-type]
                exchange.sent += sent
                writer.give_back(allowed - sent)  # the file shrank while it was sent
        except (ConnectionError, RuntimeError) as exc:
            exchange.close = True
            raise ClientGone() from exc
        finally:
            file.close()

    def start(self, status: int, headers: list[tuple[str, str]], data: bytes = b"") -> None:
        """Send a head now, with the body's first bytes if given (one write); the rest follows through write()/finish()."""
        writer = self._open(status, headers)
        self.transport.write(writer.framing.head + self._body_bytes(data) if data else writer.framing.head)  # type: ignore[union-attr]

    def write(self, data: bytes) -> None:
        """Body bytes of a response begun with start()."""
        out = self._body_bytes(data)
        if out:
            self.transport.write(out)  # type: ignore[union-attr]

    def _body_bytes(self, data: bytes) -> bytes:
        """``data`` framed for the wire (and recorded), or b"" when nothing may be sent."""
        exchange = self.current
        if exchange is None or exchange.writer is None or self.closing:
            return b""
        body = exchange.writer.take(data)
        if exchange.capture is not None and body:
            exchange.capture.response.feed(body)
        out = exchange.writer.wire(body)
        exchange.sent += len(out)
        return out

    def finish(self) -> None:
        """End a response begun with start()."""
        exchange = self.current
        assert exchange is not None
        if exchange.writer is not None and not self.closing:
            tail = exchange.writer.end()
            if tail:
                exchange.sent += len(tail)
                self.transport.write(tail)  # type: ignore[union-attr]
        self.end()

    def thread_writer(self, post: Callable[..., object]) -> Callable[[bytes], None]:
        """A write() usable from a WSGI thread: ``post`` hands bytes to the loop, with backpressure."""

        def write(data: bytes) -> None:
            gate = self.write_gate  # None: the transport never pushed back, nothing to wait for
            while gate is not None and not gate.wait(1.0):
                if self.closing:
                    break
            if self.closing:
                raise ClientGone("client disconnected")
            post(self.write, data)

        return write

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.transport.close()  # type: ignore[union-attr]

    def abort(self) -> None:
        """Drop the connection without flushing: the response cannot be completed."""
        self.closing = True
        self.transport.abort()  # type: ignore[union-attr]

    # a warm restart's handover ------------------------------------------------
    def idle(self) -> bool:
        """Nothing is owed to the client and no byte of a next request has been read."""
        return self.current is None and not self.queue and self.receiving is None and not self.parser.in_head \
            and not self.closing

    def park(self) -> None:
        """Read no more: the next request waits, unread, in the kernel for the worker this connection goes to.

        Closing an idle keep-alive connection races the client's next request
        (sent as the close lands, it gets no answer: ``RemoteDisconnected``);
        a request whose bytes were never read can be passed on whole.
        """
        if not self.parked:
            self.parked = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def unpark(self) -> None:
        """Read again (nobody could take the connection): the next request is answered here."""
        if self.parked:
            self.parked = False
            self.transport.resume_reading()  # type: ignore[union-attr]
            self._set_idle(self.worker.config.keepalive_timeout)

    def flushed(self) -> bool:
        """Every byte of the responses has left for the kernel (a handover must not drop the end of one)."""
        return self.transport is not None and self.transport.get_write_buffer_size() == 0

    def hand_over(self, give: Callable[[int], bool]) -> bool:
        """Pass the socket to ``give`` (handoff.Handoff.give) and let go of this process's descriptor.

        Only an idle, flushed connection: what the kernel holds for it (a
        request sent meanwhile) travels with it.  False: ``give`` refused it.
        """
        transport = self.transport
        assert transport is not None and self.idle() and self.flushed()
        if not give(transport.get_extra_info("socket").fileno()):
            return False
        self.closing = True
        transport.abort()  # closes this descriptor only: the connection lives on in the receiver's
        return True

    # helpers -----------------------------------------------------------------
    def _set_idle(self, timeout: float) -> None:
        self._set_deadline(timeout, 0)

    def _set_deadline(self, timeout: float, status: int) -> None:
        self.deadline = time.monotonic() + timeout
        self.deadline_status = status

    def expire(self, now: float) -> None:
        """Called by the worker's sweep: act on a passed deadline."""
        if not self.deadline or now < self.deadline or self.current is not None or self.queue or self.parked:
            return  # a parked connection may hold an unread request: it is handed over, never closed
        self.deadline = 0.0
        if self.deadline_status == 408:
            self._refuse(408, "Request not received in time", self.parser.request_line())
            self._kick()
        else:
            self.close()

    # a WebSocket's handover (devserver.worker.websocket) -----------------------
    def switch_protocol(self, protocol: asyncio.Protocol) -> None:
        """Give the transport to ``protocol`` (an accepted WebSocket), which speaks on it from now on.

        This connection reads and writes nothing more and the worker forgets
        it (a drain does not wait on it); ``protocol`` gets ``connection_made``
        and every later callback.  The client sends no frame before the 101
        that the WebSocket writes, so no byte read here belongs to it.
        """
        transport = self.transport
        assert transport is not None
        self.closing = True
        self.current = None
        self.queue.clear()
        self.parser.close()
        self.worker.closed(self)
        transport.set_protocol(protocol)
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        protocol.connection_made(transport)
