"""Text to stdout from a thread of its own, so the server never waits on its log.

``devserver | head`` closes the pipe after ten lines; ``devserver | less``
stops reading while the pager waits for a key.  Neither may stop a
shutdown: the supervisor only queues text here, and a writer thread does the
blocking ``write``.  A reader that went away (EPIPE, or EIO from a closed
terminal) silences the output for good; a reader that is merely slow loses
the lines beyond ``limit`` and is told how many.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import TextIO

LIMIT = 10_000  # queued writes (each one batch of lines) before new ones are dropped


class OutputWriter:
    """Queue text with :meth:`put` from any thread; a daemon thread writes it."""

    def __init__(self, stream: TextIO, limit: int = LIMIT) -> None:
        self.stream = stream
        self.limit = limit
        self.broken = False
        """True once the reader went away; nothing is written after that."""
        self.dropped = 0
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._fd = self._own_fd(stream)
        self._queue: deque[str] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="devserver-output", daemon=True)
        self._thread.start()

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

    def put(self, text: str) -> None:
        """Queue ``text`` for writing; never blocks on the stream."""
        if not text or self.broken:
            return
        with self._ready:
            if len(self._queue) >= self.limit:
                self.dropped += 1
                return
            self._queue.append(text)
            self._ready.notify()

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued (for at most ``timeout`` seconds), then stop."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        reported = 0
        while True:
            with self._ready:
                while not self._queue and not self._closing:
                    self._ready.wait()
                chunks = list(self._queue)
                self._queue.clear()
                dropped = self.dropped
            if dropped != reported:
                chunks.insert(0, f"… {dropped - reported} log writes dropped: stdout was not being read\n")
                reported = dropped
            if chunks and not self._write("".join(chunks)):
                return
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
