"""The worker's event batching: never blocks, counts and reports drops."""

from __future__ import annotations

import multiprocessing
import queue
import time

import pytest
from conftest import does_not_block

from devserver.ipc.events import DroppedEvents, LogEvent
from devserver.worker.eventqueue import EventSink


def event(i: int) -> LogEvent:
    return LogEvent(time.time(), 1, f"line {i}")


def test_batches_arrive_in_order() -> None:
    q: queue.Queue = queue.Queue()
    sink = EventSink(q, 1)
    for i in range(600):
        sink.emit(event(i))
    sink.flush()
    batches = [q.get_nowait() for _ in range(q.qsize())]
    assert [len(b) for b in batches] == [256, 256, 88]
    assert [e.text for b in batches for e in b] == [f"line {i}" for i in range(600)]


def test_full_queue_drops_without_blocking_and_reports_the_count_later() -> None:
    q = multiprocessing.get_context("spawn").Queue(maxsize=1)
    sink = EventSink(q, 7)
    sink.emit(event(0))
    sink.flush()  # fills the queue
    for i in range(10):
        sink.emit(event(i))
    does_not_block(sink.flush)  # nobody reads the full queue: a put that waited would wait for ever
    assert sink.dropped == 10
    q.get(timeout=5)  # the consumer catches up
    sink.emit(event(99))
    sink.flush()
    batch = q.get(timeout=5)
    assert batch[0].text == "line 99"
    assert batch[-1] == DroppedEvents(batch[-1].time, 7, 10)
    q.close()
    q.join_thread()


def test_event_channel_never_blocks_on_an_absent_consumer() -> None:
    """Nobody reads the pipe: the feeder stalls, the buffer fills, and events are dropped, not waited for."""
    from devserver.worker.eventqueue import EventChannel

    reader, writer = multiprocessing.get_context("spawn").Pipe(duplex=False)
    channel = EventChannel(writer, maxsize=4)
    sink = EventSink(channel, 3)

    def emit_all() -> None:
        for _ in range(50):
            for _ in range(256):
                sink.emit(LogEvent(time.time(), 3, "x" * 200))
            sink.flush()

    does_not_block(emit_all)
    assert sink.dropped > 0
    received = 0
    while reader.poll(0.5):
        received += sum(1 for e in reader.recv() if isinstance(e, LogEvent))
    assert received + sink.dropped == 50 * 256
    channel.close(timeout=1)
    reader.close()


def test_every_event_is_either_delivered_or_counted_across_many_batches() -> None:
    """A stalled reader: thousands of events in many flushes; delivered + dropped is exactly what was emitted."""
    q: queue.Queue = queue.Queue(maxsize=3)
    sink = EventSink(q, 1)
    delivered = 0
    reported = 0
    emitted = 0
    for round_ in range(20):
        for _ in range(437):  # not a multiple of the batch size: partial batches too
            sink.emit(event(emitted))
            emitted += 1
        sink.flush()
        if round_ % 4 == 3:  # the reader wakes up now and then and takes what is there
            while not q.empty():
                batch = q.get_nowait()
                delivered += sum(1 for e in batch if not isinstance(e, DroppedEvents))
                reported = max([reported, *(e.count for e in batch if isinstance(e, DroppedEvents))])
    while not q.empty():
        batch = q.get_nowait()
        delivered += sum(1 for e in batch if not isinstance(e, DroppedEvents))
        reported = max([reported, *(e.count for e in batch if isinstance(e, DroppedEvents))])
    sink.flush()  # the last count goes out with the next batch that fits, even an empty one's report
    sink.emit(event(-1))
    sink.flush()
    last = q.get_nowait()
    reported = max([reported, *(e.count for e in last if isinstance(e, DroppedEvents))])
    assert sink.dropped > 0 and delivered + sink.dropped == emitted
    assert reported == sink.dropped


def test_an_event_sent_as_values_arrives_built_and_equal() -> None:
    """emit_values: the worker sends (class, field values) down the real pipe; events.received builds the event."""
    from dataclasses import FrozenInstanceError, fields

    from devserver.ipc.events import RequestEvent, received
    from devserver.worker.eventqueue import EventChannel

    sent = RequestEvent(time=1.5, worker_pid=7, client="127.0.0.1:4000", method="POST", target="/a?b=1",
                        http_version="1.1", status=201, bytes_sent=99, duration_ms=2.5,
                        request_headers=(("Host", "x"),), response_headers=(("Content-Length", "3"),),
                        body_preview=b"abc", logs=("line",), request_id="7-1")
    reader, writer = multiprocessing.get_context("spawn").Pipe(duplex=False)
    channel = EventChannel(writer, maxsize=4)
    sink = EventSink(channel, 7)
    sink.emit_values(RequestEvent, tuple(getattr(sent, f.name) for f in fields(RequestEvent)))
    sink.emit(LogEvent(2.0, 7, "after"))
    sink.flush()
    assert reader.poll(5)
    built = received(reader.recv())
    assert built == [sent, LogEvent(2.0, 7, "after")]
    assert [f.name for f in fields(RequestEvent) if getattr(built[0], f.name) != getattr(sent, f.name)] == []
    with pytest.raises(FrozenInstanceError):  # built by frozen.constructor_from_values, still frozen
        built[0].status = 500  # type: ignore[misc]
    channel.close(timeout=1)
    reader.close()
