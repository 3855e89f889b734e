"""Sans-IO WebSocket libraries compared in memory: python-hyper's wsproto and websockets' ServerProtocol.

    python bench/ws_sansio.py [--rounds 5] [--small 10000] [--large 200]

The server side of each library, after its handshake, is fed the frames a
browser sends (masked, made once by wsproto's client side so both parse the
same bytes) and produces the frames a server sends back (unmasked).  Four
workloads per round: SMALL text messages of 20 bytes parsed and produced, and
LARGE binary messages of 64 KiB parsed and produced.  The libraries run
interleaved in rounds, their order swapped every other round; printed: CPU µs
per message (process time) per round, the medians, and the median of the
per-round ratios wsproto / websockets.  No sockets: this is the protocol's
own cost, which the server pays on every message.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence

import websockets
import wsproto
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Message, TextMessage
from wsproto.events import Request as WsprotoRequest

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
SMALL = "x" * 20
LARGE = os.urandom(64 * 1024)


def client_frames(messages: Sequence[str | bytes]) -> bytes:
    """The bytes a client sends for ``messages`` (masked), by wsproto's client side."""
    out = bytearray()
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(WsprotoRequest(host="127.0.0.1", target="/ws")))
    request = next(server.events())
    assert isinstance(request, WsprotoRequest)
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    for message in messages:
        out += client.send(TextMessage(message) if isinstance(message, str) else BytesMessage(message))
    return bytes(out)


# wsproto -----------------------------------------------------------------------------
def wsproto_server() -> WSConnection:
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(HANDSHAKE)
    request = next(server.events())
    assert isinstance(request, WsprotoRequest)
    server.send(AcceptConnection())
    return server


def wsproto_parse(data: bytes, chunk: int) -> int:
    server = wsproto_server()
    count = 0
    for start in range(0, len(data), chunk):
        server.receive_data(data[start:start + chunk])
        for event in server.events():
            if isinstance(event, Message) and event.message_finished:
                count += 1
    return count


def wsproto_produce(messages: Sequence[str | bytes]) -> int:
    server = wsproto_server()
    size = 0
    for message in messages:
        size += len(server.send(TextMessage(message) if isinstance(message, str) else BytesMessage(message)))
    return size


# websockets ----------------------------------------------------------------------------
def websockets_server() -> ServerProtocol:
    server = ServerProtocol(max_size=None)
    server.receive_data(HANDSHAKE)
    request = server.events_received()[0]
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    server.data_to_send()
    return server


def websockets_parse(data: bytes, chunk: int) -> int:
    server = websockets_server()
    count = 0
    for start in range(0, len(data), chunk):
        server.receive_data(data[start:start + chunk])
        for event in server.events_received():
            if isinstance(event, Frame) and event.fin:
                if event.opcode is Opcode.TEXT:
                    event.data.decode()  # wsproto hands text decoded: the same work on both sides
                count += 1
    return count


def websockets_produce(messages: Sequence[str | bytes]) -> int:
    server = websockets_server()
    size = 0
    for message in messages:
        if isinstance(message, str):
            server.send_text(message.encode())
        else:
            server.send_binary(message)
        size += sum(len(chunk) for chunk in server.data_to_send())
    return size


def cpu_us_per(count: int, work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return (time.process_time() - start) / count * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=200)
    opts = parser.parse_args(argv)
    small: list[str | bytes] = [SMALL] * opts.small
    large: list[str | bytes] = [LARGE] * opts.large
    small_wire, large_wire = client_frames(small), client_frames(large)
    libraries = {
        "wsproto": (wsproto_parse, wsproto_produce),
        "websockets": (websockets_parse, websockets_produce),
    }
    workloads = {
        "parse small": lambda parse, _: cpu_us_per(opts.small, lambda: parse(small_wire, 4096)),
        "produce small": lambda _, produce: cpu_us_per(opts.small, lambda: produce(small)),
        "parse 64 KiB": lambda parse, _: cpu_us_per(opts.large, lambda: parse(large_wire, 65536)),
        "produce 64 KiB": lambda _, produce: cpu_us_per(opts.large, lambda: produce(large)),
    }
    for name, (parse, _) in libraries.items():  # both count every message, or the figures mean nothing
        assert parse(small_wire, 4096) == opts.small and parse(large_wire, 65536) == opts.large, name
    figures: dict[tuple[str, str], list[float]] = {}
    print(f"wsproto {wsproto.__version__}, websockets {websockets.__version__}; CPU µs per message")
    for round_ in range(opts.rounds):
        order = list(libraries.items())
        for name, (parse, produce) in order if round_ % 2 == 0 else order[::-1]:
            for workload, run in workloads.items():
                figures.setdefault((name, workload), []).append(run(parse, produce))
        print(f"round {round_ + 1}: " + "  ".join(
            f"{workload}: wsproto {figures['wsproto', workload][-1]:.2f} / websockets {figures['websockets', workload][-1]:.2f}"
            for workload in workloads))
    print()
    print(f"{'workload':16} {'wsproto':>10} {'websockets':>11} {'ratio (median per round)':>26}")
    for workload in workloads:
        ours, theirs = figures["wsproto", workload], figures["websockets", workload]
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        print(f"{workload:16} {statistics.median(ours):10.2f} {statistics.median(theirs):11.2f} {ratio:25.2f}x")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
