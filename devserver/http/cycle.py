"""The request/response cycle of one HTTP/1.1 connection, kept as state: no sockets, no clocks.

What h11's ``_connection.py`` keeps, in small: the requests read and not yet
answered (pipelining, RFC 9112 §9.3.2: answered strictly in order), the one
whose body is arriving, the one being answered; and from that state the
decisions a connection makes between requests, each made here only:

- when ``100 Continue`` goes out (``continue_due``): for a request that asks
  for it, once every earlier response has gone (RFC 9110 §10.1.1).  An app
  sees a request before its whole body is in only when nothing is owed
  before it (``stream``: an ASGI app reading the body as it arrives), and by
  then the Continue has gone; the answers that go out before the body are
  the server's own refusals (413 for a declared length over the limit, 417)
  and a streaming app's early answer, and those end the connection: the
  unread body would otherwise be read as the next request;
- which deadline runs (the ``wait`` of the ``phase``, from the ``PHASES`` table): a
  fresh connection and a head being received get the header timeout, an
  idle kept-alive connection the keep-alive timeout, a body the header
  timeout again, restarted by each byte (a streamed body too, its app
  answering meanwhile); nothing runs while answers are owed.  A head or body that stalls is answered 408; an idle connection is
  closed without a word (no request, so nothing to answer);
- when reading stops and starts again (``MAX_PIPELINE`` queued requests);
- whether the connection closes after a response (``ended``, which
  otherwise names the phase the connection goes on in): when the
  request or the response said so (``Connection: close``, HTTP/1.0 without
  keep-alive: the request's ``keep_alive``; the response's framing,
  ``framing.BodyWriter.must_close``), when it is the last request that will
  be read (the stream was refused, upgraded, or ended a message that closes
  it: ``last``), or when the client half-closed and nothing more is owed.

The connection (``devserver.worker.connection``) moves the bytes, runs the
timers and asks this object what to do.  The response's own framing
(Content-Length, chunked, HEAD/204/304) is ``framing.framing_of``'s.  Requests are
held as whatever the connection makes of them (``T``: the worker's
``Exchange``).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from devserver.http.parser import Limits, Request, RequestParser
from devserver.kit.frozen import record

T = TypeVar("T")
MAX_PIPELINE = 32  # queued requests before reading stops


@record
class Wait:
    """What a connection waits for in a phase, for how long, and what it does when that is too long."""

    keepalive: bool  # the keep-alive timeout applies (otherwise the header timeout)
    answer: int  # 0: close without a word; 408: answer Request Timeout, then close
    restart: bool  # each byte received restarts the wait (a body); False: counted from the phase's start (a head)


@record
class Phase:
    """Where a connection is in its cycle, as far as timing it goes, and the wait that applies there.

    Constants rather than an Enum: the phase is read on every request, and an
    Enum member costs a Python-level lookup and hash each time (CPython 3.11).
    """

    name: str
    wait: Wait | None  # None: no deadline


FRESH = Phase("fresh", Wait(keepalive=False, answer=0, restart=False))  # connected, no byte of a request yet
IDLE = Phase("idle", Wait(keepalive=True, answer=0, restart=False))  # every request answered; kept alive
# A head's wait counts from its first byte, not its last: a head sent a byte at a time cannot hold a connection.
HEAD = Phase("head", Wait(keepalive=False, answer=408, restart=False))  # a head has begun and is not complete
BODY = Phase("body", Wait(keepalive=False, answer=408, restart=True))  # a head is in and its body is arriving
OWED = Phase("owed", None)  # answers are owed (queued or being sent): the server is awaited, not the client
PHASES = (FRESH, IDLE, HEAD, BODY, OWED)


class Cycle(Generic[T]):
    """One connection's requests and responses, and every decision between them (see the module's text)."""

    __slots__ = ("parser", "queue", "receiving", "current", "last", "continue_owed", "eof", "reading_paused", "served",
                 "streaming", "stream_ended", "stream_paused")

    def __init__(self, limits: Limits) -> None:
        self.parser = RequestParser(limits)
        self.queue: deque[T] = deque()  # read in full, not answered yet; queue[0] is answered first
        self.receiving: T | None = None  # its head is in, its body is arriving
        self.current: T | None = None  # being answered (queue[0] once begun)
        # The last request this connection reads (the stream was refused, upgraded, or ended a message that
        # closes it): its response says ``Connection: close``.  None while reading goes on.
        self.last: T | None = None
        self.continue_owed = False  # ``receiving`` asked for 100 Continue and has not had it
        self.eof = False  # the client half-closed: nothing more will be read
        self.reading_paused = False
        self.served = False  # a response has completed on this connection
        self.streaming: T | None = None  # ``receiving``, queued at its head: answered while its body arrives
        self.stream_ended: T | None = None  # the streamed request whose body just ended (the connection tells its app)
        self.stream_paused = False  # reading stopped while the streamed body's app is behind: its wait does not run

    # the request side: the connection feeds ``parser`` and reports its events here --------------------
    def received_head(self, item: T, request: Request) -> bool:
        """``item`` (made of ``request``) is being received.  True: send ``100 Continue`` now."""
        self.receiving = item
        self.continue_owed = request.expect_continue
        return self.continue_owed and self.continue_due()

    def received_end(self) -> bool:
        """The request being received is complete and queued.

        True: stop reading (the pipeline is full), or a streamed body ended (``stream_ended`` is set).
        """
        item, self.receiving = self.receiving, None
        self.continue_owed = False
        if item is None:
            return False
        if item is self.streaming:  # queued already: the connection ends its stream
            self.streaming, self.stream_ended = None, item
            return True
        self.queue.append(item)
        if self.parser.done or self.parser.upgraded:
            self.last = item
        if len(self.queue) >= MAX_PIPELINE and not self.reading_paused:
            self.reading_paused = True
            return True
        return False

    def stream(self) -> bool:
        """Queue ``receiving`` now, to be answered while its body arrives; False if an answer is owed before it.

        The parser goes on reading that body into it; the next request is
        read only once this body has ended (``received_end``), so nothing of
        it reaches the streamed request.
        """
        item = self.receiving
        if item is None or self.queue or self.current is not None:
            return False
        self.queue.append(item)
        self.streaming = item
        return True

    def refused(self, item: T) -> None:
        """``item`` is answered by the server (a broken stream, a body that could not be stored): read no more."""
        if item is not self.streaming:  # a streamed request is queued already, its app running
            self.queue.append(item)
        self.receiving = self.streaming = None
        self.continue_owed = False
        self.parser.rejected = True
        self.last = item

    def half_closed(self) -> bool:
        """The client sent its last byte (a body still arriving can never complete).  True: close now."""
        self.eof = True
        self.receiving = self.streaming = None
        self.continue_owed = False
        return self.current is None and not self.queue

    def continue_due(self) -> bool:
        """True once: ``100 Continue`` goes out now, every earlier response having gone (RFC 9110 §10.1.1)."""
        if self.continue_owed and self.current is None and not self.queue:
            self.continue_owed = False
            return True
        return False

    # the response side (the connection sets ``current`` when it begins an answer) ----------------
    def ended(self, item: T, close: bool) -> Phase | None:
        """``item``'s response is complete; ``close``: the request, the response or the handler asked for the end.

        The phase the connection is in now (IDLE: wait for the next request), or None: close it.
        """
        self.current = None
        self.served = True
        queue = self.queue
        if queue and queue[0] is item:
            queue.popleft()
        if close or (self.eof and not queue):
            return None
        return self.phase()

    def resume_due(self) -> bool:
        """True once the queue has room again after reading stopped (half of MAX_PIPELINE, so it does not flap)."""
        if self.reading_paused and len(self.queue) < MAX_PIPELINE // 2:
            self.reading_paused = False
            return True
        return False

    # timing --------------------------------------------------------------------
    def phase(self) -> Phase:
        """Where the cycle is; its ``wait`` is the deadline that applies now."""
        if self.current is not None or self.queue:
            # Streaming, its app waits on the client's body; unless reading stopped because the app is behind.
            return OWED if self.streaming is None or self.stream_paused else BODY
        if self.receiving is not None:
            return BODY
        if self.parser.in_head:
            return HEAD
        return IDLE if self.served else FRESH
