"""The accept path: every connection waiting is taken and served, also in bursts and when descriptors run out.

Each test runs a real ``python -m devserver`` on 127.0.0.1 and opens real
sockets to it; the connections are ``Connection: close`` ones, a connection
per request, which is the case the worker's own accept loop (accept.py) is
for.
"""

from __future__ import annotations

import gc
import selectors
import socket
import sys
import time
import weakref
from pathlib import Path

import pytest
from conftest import LiveServer

from devserver.http.parser import End, RequestParser

resource = pytest.importorskip("resource")  # POSIX only
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="rlimits and /proc: Linux only")

REQUEST = b"GET /echo.py HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def answer_all(socks: list[socket.socket], deadline: float) -> dict[socket.socket, bytes]:
    """Send REQUEST on every socket, then read each until the server closes it (or the deadline passes)."""
    received = {sock: b"" for sock in socks}
    selector = selectors.DefaultSelector()
    try:
        for sock in socks:
            sock.sendall(REQUEST)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        open_ = len(socks)
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                if data:
                    received[sock] += data
                else:
                    selector.unregister(sock)
                    open_ -= 1
    finally:
        selector.close()
    return received


def assert_all_answered(received: dict[socket.socket, bytes]) -> None:
    statuses = [data.split(b"\r\n", 1)[0] for data in received.values()]
    unanswered = sum(1 for status in statuses if status != b"HTTP/1.1 200 OK")
    assert unanswered == 0, f"{unanswered} of {len(statuses)} connections got no 200: {set(statuses)}"
    assert all(b"\r\nConnection: close\r\n" in data for data in received.values())


def test_a_burst_of_connections_is_accepted_and_each_answered_then_closed(server_factory) -> None:
    """300 connections arrive at once on one worker: all are taken from the backlog, answered, and closed."""
    server = server_factory("--workers", "1")
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(300)]
    try:
        assert_all_answered(answer_all(socks, time.monotonic() + 30))
    finally:
        for sock in socks:
            sock.close()


LIMIT = 48  # descriptors for the whole server: the worker starts with about 20 of them
CLIENTS = 120


def test_a_worker_out_of_descriptors_pauses_accepting_then_serves_every_waiting_connection(site: Path) -> None:
    """More connections than the worker may open: it serves what it can, waits, and takes the rest.

    The server runs with a hard open-files limit of 48 (so the worker cannot
    raise it), and 120 connections wait in the backlog at once.  accept()
    fails with EMFILE part-way; the worker must neither spin on the
    listening socket nor die, and once the answered connections are closed
    it accepts again: every connection gets its answer.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CLIENTS + 64:
        pytest.skip(f"hard open-files limit {hard} is too low for the client side of this test")
    server = LiveServer(["--workers", "1"], site,
                        preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))).start()
    try:
        [worker] = server.worker_pids()
        assert_all_answered(answer_all([socket.create_connection(("127.0.0.1", server.port), timeout=10)],
                                       time.monotonic() + 10))  # the app is imported before the burst
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(CLIENTS)]
        try:
            assert_all_answered(answer_all(socks, time.monotonic() + 30))
        finally:
            for sock in socks:
                sock.close()
        server.wait_for("out of system resources", timeout=5)  # EMFILE was hit, and said so
        assert server.worker_pids() == [worker], "the worker died or was replaced"
    finally:
        server.stop()


def test_a_closed_parser_is_freed_without_the_garbage_collector() -> None:
    """llhttp's parser and ours refer to each other; close() (at connection_lost) breaks that cycle.

    With ``Connection: close`` a parser is made per request: left to the
    garbage collector, each one would make the young generation's
    collections come sooner.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        parser = RequestParser()
        events = parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert isinstance(events[-1], End)
        parser.close()
        assert parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []  # nothing is read after close
        ref = weakref.ref(parser)
        del parser
        assert ref() is None, "the parser outlived its last reference: a cycle is left for the GC"
    finally:
        if was_enabled:
            gc.enable()
