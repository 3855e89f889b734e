"""Text to stdout from a thread of its own, so the server never waits on its log.

``devserver | head`` closes the pipe after ten lines; ``devserver | less``
stops reading while the pager waits for a key.  Neither may stop a
shutdown: the supervisor only queues text here, and a writer thread does the
blocking ``write``.  A reader that went away (EPIPE, or EIO from a closed
terminal) silences the output for good.

A reader slower than the traffic slows the writer that may wait (the
request log, ``put(text, wait=...)``), for a bounded time, as a blocking
write did: the supervisor then stops draining the workers' event pipes and
they drop events, instead of it spending CPU on lines nobody will see in
time.  Beyond ``limit`` queued characters, after that wait, lines are
dropped and the reader is told how many; the queue stays short so that what
is shown stays current.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import TextIO

LIMIT = 256 * 1024  # characters queued (beyond what the pipe holds) before new lines are dropped


class OutputWriter:
    """Queue text with :meth:`put` from any thread; a daemon thread writes it."""

    def __init__(self, stream: TextIO, limit: int = LIMIT) -> None:
        self.stream = stream
        self.limit = limit
        self.broken = False
        """True once the reader went away; nothing is written after that."""
        self.dropped = 0
        """Lines dropped because the reader did not keep up."""
        self._queued = 0  # characters in the queue
        self._stalled = False  # a put() waited in vain; no more waiting until a write succeeds
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._fd = self._own_fd(stream)
        self._queue: deque[str] = deque()
        self._ready = threading.Condition()
        self._closing = False
        # Started by the first put(): the supervisor forks its first workers only while it has one thread.
        self._thread = threading.Thread(target=self._run, name="devserver-output", daemon=True)

    @staticmethod
    def _own_fd(stream: TextIO) -> int | None:
        """A descriptor of our own for ``stream``, or None to write through the stream object.

        Writing with os.write on a duplicate never holds the lock of
        sys.stdout's buffer: a writer blocked on a full pipe at exit cannot
        deadlock the interpreter's final flush of sys.stdout.
        """
        try:
            stream.flush()
            return os.dup(stream.fileno())
        except (AttributeError, OSError, ValueError):
            return None

    def put(self, text: str, wait: float = 0.0, *, keep: bool = False) -> None:
        """Queue ``text`` for writing; if the queue is full, wait at most ``wait`` seconds for room.

        ``keep`` queues it even beyond the limit (rare lines that matter: a worker died, the server stops).
        """
        if not text or self.broken:
            return
        with self._ready:
            if self._queued + len(text) > self.limit and wait > 0 and not self._closing and not self._stalled:
                # One wait per stall: a reader that stopped reading costs one wait, not one per batch.
                self._stalled = not self._ready.wait_for(
                    lambda: self._queued + len(text) <= self.limit or self.broken, wait)
            if (self._queued + len(text) > self.limit and not keep) or self.broken:
                self.dropped += text.count("\n") or 1
                return
            self._queue.append(text)
            self._queued += len(text)
            self._ready.notify_all()
            if not self._thread.is_alive() and self._thread.ident is None:
                self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (for at most ``timeout`` seconds), then stop."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        reported = 0
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                chunks = list(self._queue)
                self._queue.clear()
                self._queued = 0
                self._ready.notify_all()  # room for a waiting put()
                dropped = self.dropped
            if dropped != reported:
                chunks.insert(0, f"… {dropped - reported} log lines dropped: stdout did not keep up\n")
                reported = dropped
            if chunks and not self._write("".join(chunks)):
                return
            if chunks:
                with self._ready:
                    self._stalled = False
            if not chunks and self._closing:
                self._release()
                return

    def _write(self, text: str) -> bool:
        try:
            if self._fd is None:
                self.stream.write(text)
                self.stream.flush()
                return True
            data = memoryview(text.encode(self._encoding, "backslashreplace"))
            while data:
                data = data[os.write(self._fd, data):]
            return True
        except (OSError, ValueError):  # EPIPE, EIO, a closed stream: the reader is gone
            self._gone()
            return False

    def _gone(self) -> None:
        """Stop writing; point the stream's descriptor at /dev/null.

        Whatever else writes to it later (the interpreter's final flush of
        sys.stdout, a print) then succeeds quietly instead of raising.
        """
        self.broken = True
        with self._ready:
            self._queue.clear()
            self._queued = 0
            self._ready.notify_all()
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.stream.fileno())
            finally:
                os.close(devnull)
        except (AttributeError, OSError, ValueError):
            pass
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
