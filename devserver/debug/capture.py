"""Recording request and response bodies for the dashboard, bounded.

Each worker appends bodies to spool files ("segments") in a private folder
the dashboard creates (``Config.capture_dir``, mode 0700, removed on exit).
A body is collected in memory up to ``Config.body_cap`` bytes while it
flows (the chunks are the ones the server holds anyway), then written in
one piece when its response ends, so an event carries only a small frozen
:class:`~devserver.ipc.events.BodyRecord` (path, offset, kept, size).

The store is bounded: a worker's share of ``Config.body_store`` is split
into ``SEGMENTS`` files; when the newest is full a new one starts and the
oldest is deleted, so the oldest bodies go first and a reader finds them
gone (never overwritten with other bytes: segment names are not reused).
With ``capture_dir`` empty (no dashboard) nothing is recorded and the cost
is one attribute test per request.
"""

from __future__ import annotations

import os
from collections import deque
from multiprocessing.util import Finalize
from typing import TYPE_CHECKING

from devserver.ipc.events import BodyRecord

if TYPE_CHECKING:
    from devserver.ipc.config import Config

SEGMENTS = 8
FLUSH_BYTES = 256 * 1024  # pending body bytes written at once even before the worker flushes its events


class BodyStore:
    """One worker's spool: append-only segments, oldest deleted first."""

    def __init__(self, directory: str, total: int) -> None:
        self.directory = directory
        self.segment_size = max(64 * 1024, total // SEGMENTS)
        self._segments: deque[str] = deque()
        self._fd = -1
        self._offset = 0  # where the next body goes in the newest segment (pending bytes included)
        self._serial = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.pid = os.getpid()  # a store belongs to one process

    def write(self, chunks: list[bytes], kept: int) -> tuple[str, int]:
        """Add ``chunks`` (``kept`` bytes in all); return (segment path, offset).

        The bytes are written at the next :meth:`flush` (one write for many
        bodies), which the worker calls before it sends the events that name them.
        """
        if self._fd < 0 or self._offset >= self.segment_size:
            self._rotate()
        path, offset = self._segments[-1], self._offset
        self._pending.extend(chunks)
        self._pending_bytes += kept
        self._offset += kept
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        return path, offset

    def flush(self) -> None:
        """Write the pending bodies.  On a failure (full disk) they are lost and a fresh segment starts."""
        if not self._pending:
            return
        view = memoryview(b"".join(self._pending))
        self._pending, self._pending_bytes = [], 0
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError:
            self._offset = self.segment_size  # part of it may be in the file: offsets there are off, start afresh

    def _rotate(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
        self._serial += 1
        path = os.path.join(self.directory, f"{self.pid}-{self._serial}.bodies")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._offset = 0
        self._segments.append(path)
        while len(self._segments) > SEGMENTS:
            self._unlink(self._segments.popleft())

    def close(self) -> None:
        """Delete this worker's segments (the dashboard also removes the folder on exit)."""
        self._pending, self._pending_bytes = [], 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        while self._segments:
            self._unlink(self._segments.popleft())

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass


class BodyRecorder:
    """Collects the first ``cap`` bytes of one body and counts them all."""

    __slots__ = ("cap", "chunks", "kept", "size")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chunks: list[bytes] = []
        self.kept = 0
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        room = self.cap - self.kept
        if room > 0 and data:
            piece = data if len(data) <= room else data[:room]
            self.chunks.append(piece)
            self.kept += len(piece)

    def feed_file(self, fileno: int, offset: int, length: int) -> None:
        """A file region sent by sendfile: its first bytes are read back for the record."""
        room = max(0, self.cap - self.kept)
        try:
            data = os.pread(fileno, min(length, room), offset) if room else b""
        except OSError:
            data = b""
        self.feed(data)
        self.size += length - len(data)

    def record(self, store: BodyStore) -> BodyRecord | None:
        """Write what was kept; None for a body that never had a byte."""
        if self.size == 0:
            return None
        try:
            path, offset = store.write(self.chunks, self.kept) if self.kept else ("", 0)
        except OSError:  # a full disk loses the recording, never the request
            return BodyRecord("", 0, 0, self.size)
        finally:
            self.chunks = []
        return BodyRecord(path, offset, self.kept, self.size)


class Capture:
    """The two bodies of one exchange."""

    __slots__ = ("request", "response", "store")

    def __init__(self, store: BodyStore, cap: int) -> None:
        self.store = store
        self.request = BodyRecorder(cap)
        self.response = BodyRecorder(cap)

    def finish(self) -> tuple[BodyRecord | None, BodyRecord | None]:
        """Spool both bodies; (request record, response record)."""
        return self.request.record(self.store), self.response.record(self.store)


_store: BodyStore | None = None


def flush() -> None:
    """Write this process's pending bodies (before the events that name them leave the worker)."""
    if _store is not None and _store.pid == os.getpid():
        _store.flush()


def begin(config: Config) -> Capture | None:
    """A recorder for a new exchange, or None when bodies are not being recorded."""
    global _store
    if not config.capture_dir or config.body_cap <= 0:
        return None
    if _store is None or _store.pid != os.getpid():
        _store = BodyStore(config.capture_dir, config.body_store // max(1, config.workers))
        Finalize(_store, _store.close, exitpriority=10)  # a worker's clean exit deletes its spool
    return Capture(_store, config.body_cap)
