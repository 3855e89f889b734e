"""A warm restart's handover of keep-alive connections, in one process: the channel and a connection's states.

A retiring worker parks an idle connection (reads no more of it), then
passes its descriptor on: a request the client sent meanwhile is still in
the kernel, unread, and the worker that takes the connection reads it.  A
connection with bytes of a request already read is never idle: it is
answered where it is.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import pytest

from devserver.handlers.exchange import Exchange
from devserver.http.parser import Limits
from devserver.ipc.config import Config
from devserver.worker.connection import Connection
from devserver.worker.handoff import Handoff

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="AF_UNIX SOCK_SEQPACKET: Linux")

GET = b"GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: localhost\r\n\r\n"


class RetiringWorker:
    """The Handler a Connection needs: answers every request with 200 "ok", parks what becomes idle."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.limits = Limits()
        self.config = Config()
        self.draining = False
        self.retiring = True
        self.connections: set[Connection] = set()
        self.recorded: list[str] = []

    def opened(self, conn: Connection) -> None:
        self.connections.add(conn)

    def closed(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def try_sync(self, conn: Connection, exchange: Exchange) -> bool:
        conn.begin(exchange)
        conn.send(200, [("Content-Type", "text/plain")], b"ok")
        conn.end()
        return True

    def streams_body(self, exchange: Exchange) -> bool:
        return False

    async def handle(self, conn: Connection, exchange: Exchange) -> None:
        raise AssertionError("every request is answered by try_sync")

    def record(self, conn: Connection, exchange: Exchange) -> None:
        self.recorded.append(exchange.request.target)

    def park(self, conn: Connection) -> bool:
        conn.park()
        return True


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A real TCP connection on 127.0.0.1: (the server's accepted end, the client's end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=10)
        server, _ = listener.accept()
    return server, client


def read_response(client: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"ok"):
        chunk = client.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.005)


async def served_then_parked() -> tuple[RetiringWorker, Connection, socket.socket]:
    loop = asyncio.get_running_loop()
    worker = RetiringWorker(loop)
    server, client = tcp_pair()
    conn = Connection(worker)
    await loop.connect_accepted_socket(lambda: conn, server)
    client.sendall(GET)
    assert b"200 OK" in await loop.run_in_executor(None, read_response, client)
    await until(lambda: worker.recorded == ["/a"], "the first request was not recorded")
    return worker, conn, client


def test_an_idle_connection_of_a_retiring_worker_is_parked_and_its_next_request_travels_unread() -> None:
    async def main() -> None:
        worker, conn, client = await served_then_parked()
        assert conn.parked and conn.idle()  # answered, and not read any more
        client.sendall(NEXT)  # the client's next request, sent while the worker retires
        handoff = Handoff.create()
        assert handoff is not None
        try:
            assert conn.flushed() and conn.hand_over(handoff.give)
            taken = handoff.take()
            assert taken is not None and handoff.take() is None
            await until(lambda: not worker.connections, "the old side kept its connection")
            taken.settimeout(10)
            received = b""
            while not received.endswith(b"\r\n\r\n"):
                received += taken.recv(65536)
            assert received == NEXT  # whole, in the new owner's hands: the old worker read none of it
            assert worker.recorded == ["/a"]
            taken.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            assert read_response(client).endswith(b"ok")  # the client never saw a close
            taken.close()
        finally:
            handoff.close()
            client.close()

    asyncio.run(main())


def test_a_connection_with_part_of_a_request_read_is_not_idle() -> None:
    async def main() -> None:
        worker, conn, client = await served_then_parked()
        conn.unpark()  # as when the channel refused it: read again
        client.sendall(NEXT[:10])
        await until(lambda: conn.parser.in_head, "the bytes were not read")
        assert not conn.idle()  # bytes of a request were read: it is answered here, never handed over
        client.sendall(NEXT[10:])
        assert b"200 OK" in await asyncio.get_running_loop().run_in_executor(None, read_response, client)
        await until(lambda: conn.parked, "not parked after its answer")
        assert worker.recorded == ["/a", "/next"] and conn.idle()
        client.close()

    asyncio.run(main())


def test_a_parked_connection_is_never_closed_by_its_keepalive_deadline() -> None:
    async def main() -> None:
        _, conn, client = await served_then_parked()
        conn.expire(time.monotonic() + 3600)
        assert not conn.closing  # a request may wait unread in the kernel: closing would drop it
        client.close()

    asyncio.run(main())


def test_a_full_channel_refuses_rather_than_blocks() -> None:
    handoff = Handoff.create()
    assert handoff is not None
    with socket.socket() as sock:
        try:
            given = 0
            while handoff.give(sock) and given < 100_000:
                given += 1
            assert 0 < given < 100_000  # refused once full, without waiting for a taker
            assert handoff.take() is not None  # each record holds its descriptor: a taker gets one
        finally:
            handoff.close()
