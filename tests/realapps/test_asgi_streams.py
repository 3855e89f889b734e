"""Streamed ASGI responses and reloads: an SSE stream that never ends is ended by a save, and reconnects to the new code."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from realapp import DEADLINE, edit, get, start, wait_for_body
from test_asgi_apps import write

pytest.importorskip("starlette")

SSE_APP = '''
import asyncio

from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

VERSION = "sse v1"


async def events(request):
    async def stream():
        n = 0
        while True:  # an SSE stream never ends by itself
            yield f"data: {VERSION} {n}\\n\\n"
            n += 1
            await asyncio.sleep(0.05)
    return StreamingResponse(stream(), media_type="text/event-stream")


async def version(request):
    return PlainTextResponse(VERSION)


async def streamed_page(request):
    async def parts():
        yield "<!doctype html><html><body>"
        await asyncio.sleep(0.01)
        yield "<p>streamed page</p></body></html>"
    return StreamingResponse(parts(), media_type="text/html")


async def whole_page(request):
    return HTMLResponse("<!doctype html><html><body><p>whole page</p></body></html>")


app = Starlette(routes=[Route("/events", events), Route("/version", version), Route("/streamed", streamed_page),
                        Route("/whole", whole_page)])
'''


def open_stream(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    return sock


def read_until(sock: socket.socket, marker: bytes, received: bytes = b"") -> bytes:
    """What ``sock`` gave until ``marker`` came, or the connection ended (b"" from recv)."""
    deadline = time.monotonic() + DEADLINE
    while marker not in received:
        assert time.monotonic() < deadline, f"{marker!r} never came: {received[-300:]!r}"
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_a_save_ends_an_open_sse_stream_and_the_client_reconnects_to_the_new_code(tmp_path: Path) -> None:
    project = write(tmp_path, {"main.py": SSE_APP})
    server = start(project, "main:app")
    try:
        sock = open_stream(server.port)
        received = read_until(sock, b"data: sse v1 1")
        assert b"transfer-encoding: chunked" in received.lower()
        edit(project / "main.py", 'VERSION = "sse v1"', 'VERSION = "sse v2"', server)  # the reload did not wait
        received = read_until(sock, b"\r\n0\r\n\r\n", received)  # the stream's end: its chunked terminator...
        assert received.endswith(b"\r\n0\r\n\r\n"), received[-200:]
        assert sock.recv(65536) == b""  # ...and the connection closed: the client reconnects
        sock.close()
        wait_for_body(server, "/version", "sse v2")
        again = open_stream(server.port)
        try:
            assert b"data: sse v2 0" in read_until(again, b"data: sse v2 0")  # the reconnect runs the new code
        finally:
            again.close()
        server.wait_for(r"GET /events 200")  # the ended stream is a row like any response
    finally:
        server.stop()


def test_a_streamed_html_page_passes_untouched_and_a_whole_one_gets_live_reload(tmp_path: Path) -> None:
    server = start(write(tmp_path, {"main.py": SSE_APP}), "main:app")
    try:
        status, headers, body = get(server, "/streamed")
        assert (status, headers.get("transfer-encoding")) == (200, "chunked")
        assert body == "<!doctype html><html><body><p>streamed page</p></body></html>"  # no script: a stream
        status, headers, body = get(server, "/whole")
        assert status == 200 and 'src="/__devserver__/livereload.js"' in body
        assert headers["content-length"] == str(len(body.encode()))
    finally:
        server.stop()
