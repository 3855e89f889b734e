"""One client connection in a worker: its bytes and its timers, around the protocol state.

Bytes go to the connection's ``Cycle`` (http/cycle.py), which parses them and
keeps the requests owed an answer; every decision of the cycle (pipelining,
``100 Continue``, which deadline runs and what it answers, whether to close
after a response) is the cycle's, and this module acts on it: it writes,
pauses and resumes reading, and runs the deadline the cycle names.  Handlers
answer through the ``Responder`` methods (``send``, ``start``/``write``/
``finish``, ``send_file``); the framing of every response is decided and
enforced by http/framing.py.  What is not protocol stays here: the error page
of a refused request, spooling bodies, and the hand-offs of a warm restart
(park, hand_over) and of an upgrade (switch_protocol).  The connection reaches
its owner through the small ``Handler`` protocol and never imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, Protocol

from devserver.debug import capture
from devserver.handlers.exchange import BodyStream, ClientGone, Exchange
from devserver.handlers.pages import error_page
from devserver.http.cycle import FRESH, IDLE, Cycle, Phase, Wait
from devserver.http.framing import BodyWriter, Headers, framing_of
from devserver.http.parser import CONTINUE, Body, End, Head, Limits, Request
from devserver.ipc.config import Config
from devserver.ipc.reports import ErrorReport

# Linux holds a corked socket's bytes until it is uncorked (nginx's tcp_nopush); elsewhere nothing is corked.
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


def _cork(sock: socket.socket, on: int) -> bool:
    """Cork (1) or uncork (0) a TCP socket where the platform can; True if it did."""
    if _TCP_CORK is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, on)
    except OSError:  # closed meanwhile, or not TCP: the bytes go as they are
        return False
    return True


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
    def streams_body(self, exchange: Exchange) -> bool: ...  # True: answer it at its head, its body read as it comes
    async def handle(self, conn: Connection, exchange: Exchange) -> None: ...
    def record(self, conn: Connection, exchange: Exchange) -> None: ...
    def park(self, conn: Connection) -> bool: ...  # True: taken for the new workers (see Connection.park)


class Connection(asyncio.Protocol):
    """Moves one connection's bytes and runs its timers; ``cycle`` (http/cycle.py) decides what happens.

    With ``Connection: close`` one is made per request, so making one is kept
    cheap: slots, and no thread primitive until a writer thread must wait.
    """

    __slots__ = ("worker", "loop", "cycle", "parser", "queue", "transport", "client", "task", "held", "closing",
                 "write_gate", "deadline", "waiting", "parked", "kicking")

    # Set by connection_made, the first call asyncio makes: nothing reads it before.  (A connection made
    # with its transport would need a second object in front of it, one more call on every callback.)
    transport: asyncio.Transport

    def __init__(self, worker: Handler) -> None:
        self.worker = worker
        self.loop = worker.loop
        self.cycle: Cycle[Exchange] = Cycle(worker.limits)
        self.parser = self.cycle.parser
        self.queue = self.cycle.queue  # requests owed an answer, in order (the cycle's)
        self.client = ""
        self.task: asyncio.Task[None] | None = None
        self.held = False  # the current exchange is being answered off the loop (hold/release)
        self.closing = False
        # Set while the transport takes more bytes; made by the first pause_writing (None: never paused).
        self.write_gate: threading.Event | None = None
        self.deadline = 0.0  # monotonic time after which the sweep acts on ``waiting`` (0: none)
        self.waiting: Wait | None = None  # the cycle's wait the deadline was set for
        self.parked = False  # not read, kept for the worker a warm restart hands it to (park)
        self.kicking = False  # _kick is running: a release() from an answer it started (an inline call) leaves it to it

    @property
    def current(self) -> Exchange | None:
        """The exchange being answered."""
        return self.cycle.current

    @property
    def receiving(self) -> Exchange | None:
        """The exchange whose body is arriving."""
        return self.cycle.receiving

    @property
    def eof(self) -> bool:
        """The client half-closed: it sends nothing more (an ASGI app hears ``http.disconnect``)."""
        return self.cycle.eof

    # asyncio callbacks ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if peer else ""
        self.worker.opened(self)
        self._watch(self.cycle.phase())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.worker.closed(self)
        if self.write_gate is not None:
            self.write_gate.set()  # wake a writer thread so it sees the loss
        cycle = self.cycle
        if self.task is not None and not self.task.done() and cycle.current is None:
            self.task.cancel()
        for exchange in (*cycle.queue, cycle.receiving):
            # The current exchange's body may still be read by its app; end() closes it.
            if exchange is not None and exchange is not cycle.current and exchange.body is not None:
                exchange.body.close()
        cycle.queue.clear()
        cycle.receiving = None
        self.parser.close()

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent in full, then close."""
        receiving = self.cycle.receiving
        if receiving is not None and receiving.body is not None:
            receiving.body.close()
        if self.cycle.half_closed():
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
        cycle = self.cycle
        for event in self.parser.feed(data):
            if isinstance(event, Head):
                self._on_head(event.request)
            elif isinstance(event, Body):
                if cycle.receiving is not None and not self._add_body(cycle.receiving, event.data):
                    break  # refused: nothing after this is read
            elif isinstance(event, End):
                if cycle.received_end():
                    self._ended_or_full()
            else:
                self._refuse(event.error.status, event.error.message, event.line)
        self._watch(self.cycle.phase())
        self._kick()

    # request bookkeeping ---------------------------------------------------
    def _on_head(self, request: Request) -> None:
        exchange = Exchange(request)
        exchange.capture = capture.begin(self.worker.config)
        if self.worker.draining:
            exchange.close = True
        if self.cycle.received_head(exchange, request):
            self.transport.write(CONTINUE)
        if (request.content_length or request.chunked) and not self.cycle.queue and self.worker.streams_body(exchange) \
                and self.cycle.stream():
            exchange.body = BodyStream(self._pause_body, self._resume_body)

    def _pause_body(self) -> None:
        """The app leaves a streamed body's bound untaken: stop reading, and the body's wait (the client is not late)."""
        self.transport.pause_reading()
        self.cycle.stream_paused = True

    def _resume_body(self) -> None:
        cycle = self.cycle
        cycle.stream_paused = False
        if not self.closing and not cycle.reading_paused:
            self.transport.resume_reading()
            self._watch(cycle.phase())  # the body's wait, from now

    def _ended_or_full(self) -> None:
        """The cycle asked for a look at a request's end: a streamed body ended, or the pipeline is full."""
        cycle = self.cycle
        ended, cycle.stream_ended = cycle.stream_ended, None
        if ended is None:
            self.transport.pause_reading()
        elif isinstance(ended.body, BodyStream):
            ended.body.end()

    def _add_body(self, exchange: Exchange, data: bytes) -> bool:
        """Store body bytes; on a spool failure (disk full) queue an error answer and return False."""
        try:
            exchange.add_body(data)
            return True
        except OSError as exc:
            body, exchange.body = exchange.body, None
            if body is not None:
                with contextlib.suppress(OSError):  # flushing what the failed write left buffered fails too
                    body.close()
            status = SPOOL_FAILURE_STATUS.get(exc.errno or 0, 500)
            message = f"The request body could not be stored: {exc.strerror or exc}"
            if isinstance(body, BodyStream):
                self._refuse_stream(exchange, body, status, message)
                return False
            exchange.status, exchange.error = status, message
            exchange.close = True
            self.cycle.refused(exchange)  # the rest of the body is never parsed
            return False

    def _refuse(self, status: int, message: str, line: bytes) -> None:
        """Queue an error answer from the server itself; nothing more is read.

        ``line`` is the refused request's first line as received: all that is
        known of it, shown in the log in place of a method and target.
        """
        receiving = self.cycle.receiving
        if receiving is not None and isinstance(receiving.body, BodyStream):
            self._refuse_stream(receiving, receiving.body, status, message)
            return
        if receiving is not None and receiving.body is not None:
            receiving.body.close()
        exchange = Exchange(Request(method="-", target="-", version="1.1", headers=[], keep_alive=False,
                                    request_line=line.decode("latin-1")))
        exchange.error = message
        exchange.status = status
        self.cycle.refused(exchange)

    def _refuse_stream(self, exchange: Exchange, body: BodyStream, status: int, message: str) -> None:
        """A streamed body broke off: nothing more is read; its app is running, so its call answers the error."""
        exchange.error = message
        self.cycle.refused(exchange)  # queued already: the last request this connection reads
        body.fail(status, message)  # asgi.HTTPCall: the error page, or a close if its response has begun

    def _kick(self) -> None:
        queue = self.cycle.queue
        self.kicking = True
        try:
            # Not once closing: what is queued behind a response that closed is never answered (its bytes
            # would follow the close on the wire, or be read as the rest of a body cut short).
            while queue and self.task is None and not self.held and not self.closing:
                exchange = queue[0]
                if exchange.error is not None or not self.worker.try_sync(self, exchange):
                    self.task = self.loop.create_task(self._serve())
                    return
        finally:
            self.kicking = False
        if self.cycle.continue_owed and self.cycle.continue_due():
            self.transport.write(CONTINUE)

    async def _serve(self) -> None:
        queue = self.cycle.queue
        try:
            while queue and not self.closing:
                exchange = queue[0]
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
        self.cycle.current = exchange

    def hold(self) -> None:
        """The current exchange is answered later, by a callback: answer nothing else until release()."""
        self.held = True

    def release(self) -> None:
        """The held exchange is answered: go on with the queue."""
        self.held = False
        if not self.closing and not self.kicking:  # else the loop in _kick goes on with the queue
            self._kick()

    def end(self) -> None:
        """The current response is complete: log it and move on."""
        cycle = self.cycle
        exchange = cycle.current
        assert exchange is not None
        if exchange.body is not None:
            exchange.body.close()
        writer = exchange.writer
        close = exchange.close
        if writer is not None:
            must_close = writer.must_close
            close = close or must_close
            if must_close or writer.overrun:  # else the body matched its framing: nothing to report
                exchange.error = exchange.error or writer.mismatch()
        phase = cycle.ended(exchange, close)
        self.worker.record(self, exchange)
        if phase is None or self.closing:
            self.close()
            return
        if cycle.reading_paused and cycle.resume_due():
            self.transport.resume_reading()
        if phase is IDLE and self.worker.retiring and self.worker.park(self):
            return
        self._watch(phase)

    def _open(self, status: int, headers: Headers, body_length: int | None = None) -> BodyWriter:
        """Decide the current response's framing (writer.py) and account for its head."""
        exchange = self.cycle.current
        assert exchange is not None
        request = exchange.request
        close = exchange.close or exchange is self.cycle.last
        framing = framing_of(status, headers, method=request.method, version=request.version, close=close,
                        body_length=body_length)
        writer = exchange.writer = BodyWriter(framing)
        exchange.close = framing.close
        exchange.status = status
        exchange.sent += len(framing.head)
        return writer

    def send(self, status: int, headers: Headers, body: bytes = b"", *, close: bool = False) -> None:
        """A whole response in one write."""
        exchange = self.cycle.current
        assert exchange is not None
        if close:
            exchange.close = True
        writer = self._open(status, headers, len(body))
        body = writer.take(body)
        if exchange.capture is not None and body:
            exchange.capture.response.feed(body)  # what was sent: a body cut at its Content-Length is recorded cut
        data = writer.whole(body)
        exchange.sent += len(data)
        self.transport.write(writer.framing.head + data)

    def send_error(self, status: int, message: str, detail: str | None = None, *, close: bool = False,
                   report: ErrorReport | None = None) -> None:
        """An HTML error page (``detail``: a traceback shown in dev mode; ``report``: the rich one)."""
        body = error_page(status, message, detail, report)
        self.send(status, [("Content-Type", "text/html; charset=utf-8")], body, close=close)

    async def send_file(self, status: int, headers: list[tuple[str, str]], file: BinaryIO, offset: int, length: int) -> None:
        """Headers, then up to ``length`` bytes of ``file`` from ``offset`` by sendfile; ``file`` is closed after.

        A Content-Length in ``headers`` is kept to: bytes past it are not sent,
        and a file that ends before it leaves the connection to be closed.
        """
        try:
            offset, left = self._file_now(status, headers, file, offset, length)
            if left:
                await self._file_rest(file, offset, left)
        finally:
            file.close()

    def start_file(self, status: int, headers: list[tuple[str, str]], file: BinaryIO, offset: int, length: int) -> None:
        """``send_file`` then ``end``, with no task when the socket takes the whole file at once (usual on loopback).

        Else a task sends the rest and ends the response; as ``task`` it holds
        up the queue meanwhile, as ``_serve``'s does.  Only from ``try_sync``
        (no task running).
        """
        try:
            offset, left = self._file_now(status, headers, file, offset, length)
        except ClientGone:
            left = 0  # exchange.close is set: end() closes the connection
        if left:
            self.task = self.loop.create_task(self._finish_file(file, offset, left))
            return
        file.close()
        self.end()

    async def _finish_file(self, file: BinaryIO, offset: int, count: int) -> None:
        try:
            await self._file_rest(file, offset, count)
        except ClientGone:
            pass  # exchange.close is set: end() closes the connection
        finally:
            file.close()
            self.task = None
        self.end()
        if not self.closing:
            self._kick()

    def _file_now(self, status: int, headers: list[tuple[str, str]], file: BinaryIO, offset: int,
                  length: int) -> tuple[int, int]:
        """Open the response, send its head and what the socket takes of the file now: (next offset, bytes left)."""
        exchange = self.cycle.current
        assert exchange is not None
        writer = self._open(status, headers, length)
        allowed = writer.allowance(length)
        # Over TLS the socket carries records, not the file: asyncio encrypts what it reads (its fallback).
        plain = self.transport.get_extra_info("sslcontext") is None
        sock = self.transport.get_extra_info("socket")
        corked = plain and bool(allowed) and _cork(sock, 1)  # the head leaves with the file's first bytes, not alone
        try:
            self.transport.write(writer.framing.head)
            if allowed and exchange.capture is not None:
                exchange.capture.response.feed_file(file.fileno(), offset, allowed)
            sent = self._sendfile_now(sock, file, offset, allowed) if plain and allowed else 0
        except (ConnectionError, RuntimeError) as exc:
            exchange.close = True
            raise ClientGone() from exc
        finally:
            if corked:
                _cork(sock, 0)
        exchange.sent += sent
        return offset + sent, allowed - sent

    async def _file_rest(self, file: BinaryIO, offset: int, count: int) -> None:
        """The rest of a file, by asyncio's ``loop.sendfile`` (it waits for room, or reads and writes)."""
        exchange = self.cycle.current
        assert exchange is not None and exchange.writer is not None
        try:
            sent = await self.loop.sendfile(self.transport, file, offset, count)
        except (ConnectionError, RuntimeError) as exc:
            exchange.close = True
            raise ClientGone() from exc
        exchange.sent += sent
        exchange.writer.give_back(count - sent)  # the file shrank while it was sent

    def _sendfile_now(self, sock: socket.socket, file: BinaryIO, offset: int, count: int) -> int:
        """Send what the socket takes of ``count`` bytes of ``file`` now; the bytes sent (0: leave it all to asyncio).

        Only when nothing waits in the transport's buffer (bytes must leave in
        order).  On loopback the socket usually takes a whole 1 MiB file in one
        call, where ``loop.sendfile`` costs a future, a pause and resume of
        reading and a seek of the file each time.
        """
        if self.closing or self.transport.get_write_buffer_size():
            return 0
        sent = 0
        try:
            target, source = sock.fileno(), file.fileno()
            while sent < count:
                chunk = os.sendfile(target, source, offset + sent, count - sent)
                if not chunk:
                    break  # the file ended early: asyncio finds the same end
                sent += chunk
        except ConnectionError:
            raise
        except OSError:  # full (EAGAIN), or not a file sendfile takes: asyncio's fallback reads and writes it
            pass
        return sent

    def start(self, status: int, headers: Headers, data: bytes = b"") -> None:
        """Send a head now, with the body's first bytes if given (one write); the rest follows through write()/finish()."""
        writer = self._open(status, headers)
        self.transport.write(writer.framing.head + self._body_bytes(data) if data else writer.framing.head)

    def write(self, data: bytes) -> None:
        """Body bytes of a response begun with start()."""
        out = self._body_bytes(data)
        if out:
            self.transport.write(out)

    def _body_bytes(self, data: bytes) -> bytes:
        """``data`` framed for the wire (and recorded), or b"" when nothing may be sent."""
        exchange = self.cycle.current
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
        exchange = self.cycle.current
        assert exchange is not None
        if exchange.writer is not None and not self.closing:
            tail = exchange.writer.end()
            if tail:
                exchange.sent += len(tail)
                self.transport.write(tail)
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
            transport = self.transport
            # With nothing left to flush, a plain transport's abort() is its close() less a look-up of the writer
            # only a full buffer registers (three KeyErrors: ~17,000 instructions, on each Connection: close).
            # Not under TLS, whose close() says close_notify first.
            if transport.get_write_buffer_size() or self.worker.config.secure:
                transport.close()
            else:
                transport.abort()

    def abort(self) -> None:
        """Drop the connection without flushing: the response cannot be completed."""
        self.closing = True
        self.transport.abort()

    # a warm restart's handover ------------------------------------------------
    def idle(self) -> bool:
        """Nothing is owed to the client and no byte of a next request has been read."""
        return not self.closing and self.cycle.phase() in (FRESH, IDLE)

    def park(self) -> None:
        """Read no more: the next request waits, unread, in the kernel for the worker this connection goes to.

        Closing an idle keep-alive connection races the client's next request
        (sent as the close lands, it gets no answer: ``RemoteDisconnected``);
        a request whose bytes were never read can be passed on whole.
        """
        if not self.parked:
            self.parked = True
            self.transport.pause_reading()

    def unpark(self) -> None:
        """Read again (nobody could take the connection): the next request is answered here."""
        if self.parked:
            self.parked = False
            self.transport.resume_reading()
            self._watch(self.cycle.phase())

    def flushed(self) -> bool:
        """Every byte of the responses has left for the kernel (a handover must not drop the end of one)."""
        return self.transport.get_write_buffer_size() == 0

    def hand_over(self, give: Callable[[int], bool]) -> bool:
        """Pass the socket to ``give`` (handoff.Handoff.give) and let go of this process's descriptor.

        Only an idle, flushed connection: what the kernel holds for it (a
        request sent meanwhile) travels with it.  False: ``give`` refused it.
        """
        transport = self.transport
        assert self.idle() and self.flushed()
        if not give(transport.get_extra_info("socket").fileno()):
            return False
        self.closing = True
        transport.abort()  # closes this descriptor only: the connection lives on in the receiver's
        return True

    def switch_protocol(self, protocol: asyncio.Protocol) -> None:
        """Give the transport to ``protocol``, which speaks on it from now on (an upgrade, e.g. to WebSocket).

        Call it in place of ``end`` for the exchange being answered: the new
        protocol writes the ``101 Switching Protocols`` head itself (a
        WebSocket's, worker/websocket.py) or it has gone out through
        ``send``/``start`` (the handler's ``Connection: Upgrade`` and
        ``Upgrade`` fields are sent as given, framing.framing_of).  The exchange is
        the caller's to record (a WebSocket's row is recorded when it
        closes, with what it carried).  This connection then reads and writes
        nothing more, its deadline stops, the worker forgets it, and the
        transport stays open: ``protocol`` gets ``connection_made`` with it
        and every later callback (data, flow control, ``connection_lost``).
        Bytes the client sent after the upgrade's head in the same read are
        not passed on (llhttp stops at the head).
        """
        exchange = self.cycle.current
        self.closing = True  # nothing of HTTP is read or written on it from here on
        self.deadline = 0.0
        if exchange is not None:
            self.cycle.current = None
            if exchange.body is not None:
                exchange.body.close()
        self.parser.close()
        self.worker.closed(self)
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)

    # timers --------------------------------------------------------------------
    def _watch(self, phase: Phase) -> None:
        """Run the deadline of the cycle's ``phase``: a new one when the phase changed, or each byte of a body."""
        wait = phase.wait
        if wait is None:
            self.deadline = 0.0
        elif wait is not self.waiting or wait.restart:
            config = self.worker.config
            self.deadline = time.monotonic() + (config.keepalive_timeout if wait.keepalive else config.header_timeout)
        self.waiting = wait

    def expire(self, now: float) -> None:
        """Called by the worker's sweep: act on a passed deadline."""
        wait = self.waiting
        if not self.deadline or now < self.deadline or wait is None or self.parked:
            return  # a parked connection may hold an unread request: it is handed over, never closed
        self.deadline = 0.0
        if wait.answer:
            self._refuse(wait.answer, "Request not received in time", self.parser.request_line())
            self._kick()
        else:
            self.close()
