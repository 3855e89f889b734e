"""The supervisor's poll of its event pipes and worker sentinels (devserver.supervisor.readiness): only what
can be read is named, a pipe's end counts as readable, a new set is polled anew, a wake ends a wait."""

from __future__ import annotations

import os
import threading
from multiprocessing import Pipe

import pytest

from devserver.supervisor.readiness import Readiness

LONG = 3600.0  # seconds: a wait that only a wake, or data, may end


@pytest.fixture
def readiness():
    made = Readiness()
    yield made
    made.close()


def test_only_the_pipes_with_something_to_read_are_named(readiness) -> None:
    quiet, _quiet_writer = Pipe(duplex=False)
    busy, busy_writer = Pipe(duplex=False)
    busy_writer.send_bytes(b"batch")
    assert readiness.ready([quiet, busy], LONG) == [busy]
    assert busy.recv_bytes() == b"batch"
    assert readiness.ready([quiet, busy], 0) == []


def test_the_end_of_a_pipe_reads_as_ready(readiness) -> None:
    reader, writer = Pipe(duplex=False)
    writer.close()  # the worker died
    assert readiness.ready([reader], LONG) == [reader]
    with pytest.raises(EOFError):
        reader.recv_bytes()


def test_a_new_set_is_polled_anew_even_on_a_reused_descriptor(readiness) -> None:
    first, first_writer = Pipe(duplex=False)
    assert readiness.ready([first], 0) == []
    number = first.fileno()
    first.close()
    first_writer.close()
    second, second_writer = Pipe(duplex=False)  # likely given the descriptor the first one had
    second_writer.send_bytes(b"x")
    assert readiness.ready([second], LONG) == [second], f"descriptor {number} reused as {second.fileno()}"


def test_descriptors_are_polled_as_they_are(readiness) -> None:
    sentinel, ended = os.pipe()  # a process sentinel: readable once the process has ended
    try:
        assert readiness.ready([sentinel], 0) == []
        os.close(ended)
        assert readiness.ready([sentinel], LONG) == [sentinel]
    finally:
        os.close(sentinel)


def test_a_wake_from_another_thread_ends_a_wait_with_nothing_ready(readiness) -> None:
    quiet, _writer = Pipe(duplex=False)
    results: list[list[object]] = []
    waiter = threading.Thread(target=lambda: results.append(readiness.ready([quiet], LONG)), daemon=True)
    waiter.start()
    readiness.wake()
    waiter.join(60)  # a deadline for the wake, far below LONG
    assert not waiter.is_alive() and results == [[]]


def test_a_wake_before_the_wait_is_not_lost(readiness) -> None:
    quiet, writer = Pipe(duplex=False)
    readiness.wake()
    readiness.wake()
    assert readiness.ready([quiet], LONG) == []  # the wakes came first: the wait ends at once
    writer.send_bytes(b"x")
    assert readiness.ready([quiet], LONG) == [quiet]  # and what comes next is named as before


def test_a_wake_after_close_does_nothing() -> None:
    readiness = Readiness()
    readiness.close()
    readiness.wake()
    readiness.close()
