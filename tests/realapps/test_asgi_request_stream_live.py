"""A request body reaches a real ASGI app as it arrives: the app answers a part before the client sends the next."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from realapp import DEADLINE, start
from test_asgi_apps import write
from test_asgi_streams import read_until

pytest.importorskip("starlette")

# Each app answers every part of the body with its size on a line, as the part comes (a streamed response).
PLAIN_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    more = True
    while more:
        event = await receive()
        more = event.get("more_body", False)
        await send({"type": "http.response.body", "body": b"%d\\n" % len(event.get("body", b"")), "more_body": more})
'''

STARLETTE_APP = '''
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route


async def sizes(request):
    async def answer():
        async for part in request.stream():
            yield b"%d\\n" % len(part)
    return StreamingResponse(answer(), media_type="text/plain")


async def hello(request):
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", sizes, methods=["POST"]), Route("/hello", hello)])
'''


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize("source", [PLAIN_APP, STARLETTE_APP], ids=["plain", "starlette"])
def test_each_part_of_a_slow_chunked_body_is_answered_before_the_next_is_sent(tmp_path: Path, source: str) -> None:
    server = start(write(tmp_path, {"main.py": source}), "main:app")
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        with sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"a" * 4))
            received = read_until(sock, b"\r\n4\n\r\n")  # the first part's answer, while the body is unfinished
            assert received.startswith(b"HTTP/1.1 200")
            sock.sendall(chunk(b"b" * 60))
            received = read_until(sock, b"\r\n60\n\r\n", received)
            sock.sendall(b"0\r\n\r\n")
            received = read_until(sock, b"\r\n0\r\n\r\n", received)
            assert received.endswith(b"\r\n0\r\n\r\n")
            # Kept alive: the next request on the connection is its own, not read into the body.
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            after = read_until(sock, b"\r\n\r\n")
            assert after.startswith(b"HTTP/1.1 ")
            assert b"connection: close" not in after.lower()
        server.wait_for(r"POST / 200")
    finally:
        server.stop()
