"""The worker's side of the event queue: batch, never block, count drops."""

from __future__ import annotations

import pickle
import queue
import threading
import time
from collections import deque

from devserver.ipc.channels import Batch, EventWriter
from devserver.ipc.control import StopSeen
from devserver.ipc.events import DroppedEvents, Event, Wire

MAX_BATCH = 256


class EventSink:
    """Collects events and puts them on the queue in batches.

    ``emit`` may be called from any thread; ``flush`` only from the loop.
    When the queue is full the batch is dropped and counted; the count goes
    out with the next batch that fits, so the consumer can show it.
    """

    def __init__(self, target: EventChannel, pid: int) -> None:
        self._queue = target
        self._pid = pid
        self._pending: deque[Event | Wire] = deque()
        self.dropped = 0
        self._dropped_reported = 0

    def emit(self, event: Event) -> None:
        self._pending.append(event)

    def emit_values(self, cls: type[Event], values: tuple[object, ...]) -> None:
        """An event as its class and field values (events.Wire): the supervisor builds it (events.received)."""
        self._pending.append((cls, values))

    def __len__(self) -> int:
        return len(self._pending)

    def mark(self, message: StopSeen) -> None:
        """Send what is pending, then ``message`` as a batch of its own behind it (lost, uncounted, when full)."""
        self.flush()
        try:
            self._queue.put_nowait([message])
        except queue.Full:
            pass  # whoever waits for it waits with a deadline

    def flush(self) -> None:
        while self._pending:
            batch: list[Event | Wire] = []
            while self._pending and len(batch) < MAX_BATCH:
                batch.append(self._pending.popleft())
            if self.dropped != self._dropped_reported:
                batch.append(DroppedEvents(time.time(), self._pid, self.dropped))
            try:
                self._queue.put_nowait(batch)
            except queue.Full:
                # The channel is full: this batch and everything behind it are lost, and all of it is counted.
                self.dropped += sum(1 for e in batch if not isinstance(e, DroppedEvents)) + len(self._pending)
                self._pending.clear()
                return
            self._dropped_reported = self.dropped


class EventChannel:
    """A worker's queue to the supervisor: a bounded buffer and a feeder thread over a Pipe.

    Like ``multiprocessing.Queue`` (``put_nowait`` raises ``queue.Full`` when
    the buffer is full), but one per worker: a shared Queue has one write lock
    for all workers, and a worker killed while holding it would silence every
    other worker's events for good.
    """

    def __init__(self, connection: EventWriter, maxsize: int) -> None:
        self._connection = connection
        self._buffer: queue.Queue[Batch | None] = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._feed, name="devserver-events", daemon=True)
        self._thread.start()

    def put_nowait(self, batch: Batch) -> None:
        self._buffer.put_nowait(batch)

    def _feed(self) -> None:
        while True:
            batch = self._buffer.get()
            if batch is None:
                return
            try:
                # Plain pickle: events hold no handles for ForkingPickler's reducers, whose Pickler costs
                # a copy of its dispatch table per batch.  The supervisor's recv() unpickles it as usual.
                self._connection.send_bytes(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
            except (OSError, ValueError):
                return  # the supervisor is gone: nothing left to tell

    def close(self, timeout: float = 2.0) -> None:
        """Send what is buffered (bounded in time), then stop the feeder."""
        try:
            self._buffer.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._connection.close()
