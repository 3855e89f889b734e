"""WebSockets to real ASGI apps (FastAPI, and a raw ASGI callable) served by the real devserver command,
driven by the `websockets` library's sync client (an implementation independent of the server's side)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveServer
from realapp import DEADLINE, SteadyLoad, edit, start
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

MAIN = '''
import asyncio
from pathlib import Path

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.responses import PlainTextResponse

VERSION = "one"
app = FastAPI()
room = set()


def called(name):
    with open(Path(__file__).with_name("calls.log"), "a") as f:
        f.write(name + "\\n")


@app.websocket("/echo")
async def echo(ws: WebSocket):
    called("echo")
    await ws.accept(subprotocol=ws.scope["subprotocols"][0] if ws.scope["subprotocols"] else None)
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                called(f"disconnect {message['code']}")
                return
            if message.get("text") == "version":
                await ws.send_text(VERSION)
            elif message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


@app.websocket("/room")
async def chat(ws: WebSocket):
    await ws.accept()
    room.add(ws)
    try:
        while True:
            text = await ws.receive_text()
            for other in list(room):
                await other.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        room.discard(ws)


@app.websocket("/bye")
async def bye(ws: WebSocket):
    await ws.accept()
    await ws.receive_text()
    await ws.close(code=4001, reason="done here")


@app.websocket("/refuse")
async def refuse(ws: WebSocket):
    await ws.close()


@app.websocket("/deny")
async def deny(ws: WebSocket):
    await ws.send_denial_response(PlainTextResponse("log in first", status_code=401))


@app.websocket("/stall")
async def stall(ws: WebSocket):
    called("stall")
    await asyncio.Event().wait()
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(MAIN.lstrip())
    return tmp_path


@pytest.fixture
def server(project: Path) -> Iterator[LiveServer]:
    live = start(project, "--workers", "1", "--header-timeout", "1", "main:app")
    yield live
    live.stop()


def ws(server: LiveServer, path: str, **kwargs: object) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=DEADLINE, max_size=None, **kwargs)


def calls(project: Path) -> list[str]:
    log = project / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def handshake_bytes(host: str, path: str = "/echo") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def test_echo_text_binary_fragments_and_ping(server: LiveServer) -> None:
    with ws(server, "/echo", subprotocols=["chat"]) as client:
        assert client.subprotocol == "chat"
        client.send("héllo")
        assert client.recv(DEADLINE) == "héllo"
        client.send(b"\x00\xff" * 1000)
        assert client.recv(DEADLINE) == b"\x00\xff" * 1000
        client.send(["frag", "men", "ted"])  # three frames, one message
        assert client.recv(DEADLINE) == "fragmented"
        assert client.ping(b"still there?").wait(DEADLINE)
        big = bytes(range(256)) * 4096  # 1 MiB
        client.send(big)
        assert client.recv(DEADLINE) == big
    server.wait_for(r"GET /echo 101 .* websocket 4 in / 4 out, closed 1000")


def test_close_codes_both_ways(server: LiveServer, project: Path) -> None:
    with ws(server, "/bye") as client:
        client.send("go")
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(DEADLINE)
    assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "done here")
    with ws(server, "/echo") as client:
        client.close(4002, "client leaves")
    server.wait_for(r"GET /echo 101 .* closed 4002")
    assert "disconnect 4002" in calls(project)


def test_an_oversize_message_closes_with_1009(server: LiveServer) -> None:
    with ws(server, "/echo") as client:
        with pytest.raises(ConnectionClosed) as closed:
            client.send(b"x" * (16 * 1024 * 1024 + 1))
            client.recv(DEADLINE)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    with ws(server, "/echo") as client:  # the server lives on
        client.send("after")
        assert client.recv(DEADLINE) == "after"


def test_a_foreign_host_is_refused_before_the_app(server: LiveServer, project: Path) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(handshake_bytes("attacker.example"))
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403 ")
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.sendall(handshake_bytes(f"localhost:{server.port}"))  # the same request, our own Host
        assert sock.recv(65536).startswith(b"HTTP/1.1 101 ")
    server.wait_for(r"GET /echo 101 ")
    assert calls(project).count("echo") == 1  # only the second reached the app


def test_refusal_denial_and_a_handshake_never_answered(server: LiveServer, project: Path) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(server, "/refuse")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as denied:
        ws(server, "/deny")
    assert denied.value.response.status_code == 401 and denied.value.response.body == b"log in first"
    with pytest.raises(InvalidStatus) as stalled:  # --header-timeout 1 bounds the app's answer
        ws(server, "/stall")
    assert stalled.value.response.status_code == 500
    assert b"did not accept or refuse" in stalled.value.response.body
    with ws(server, "/echo") as client:  # the server lives on
        client.send("still")
        assert client.recv(DEADLINE) == "still"


def test_a_client_that_vanishes(server: LiveServer, project: Path) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    sock.sendall(handshake_bytes(f"127.0.0.1:{server.port}"))
    assert sock.recv(65536).startswith(b"HTTP/1.1 101 ")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, no close frame
    server.wait_for(r"GET /echo 101 .* closed 1006")
    with ws(server, "/echo") as client:
        client.send("next")
        assert client.recv(DEADLINE) == "next"
    assert "disconnect 1006" in calls(project)


def test_a_broadcast_reaches_20_websockets(server: LiveServer) -> None:
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ws(server, "/room")) for _ in range(20)]
        for index, client in enumerate(clients):  # a client hearing its own hello is in the room
            client.send(f"hello {index}")
            while client.recv(DEADLINE) != f"hello {index}":
                pass
        clients[7].send("from seven")
        for client in clients:
            while (message := client.recv(DEADLINE)).startswith("hello "):
                pass
            assert message == "from seven"


@pytest.mark.parametrize("strategy", ["auto", "restart"])
def test_a_reload_closes_open_websockets_with_1012_and_they_reconnect_to_the_new_code(
        project: Path, strategy: str) -> None:
    (project / "html_page").mkdir()
    (project / "html_page" / "page.txt").write_text("a page")  # HTTP beside the sockets (the APP's is not ASGI yet)
    server = start(project, "--reload", strategy, "main:app")  # two workers
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop)
        clients = [stack.enter_context(ws(server, "/echo")) for _ in range(20)]
        load = stack.enter_context(SteadyLoad(server, "/page.txt"))
        for client in clients:
            client.send("version")
            assert client.recv(DEADLINE) == "one"
        codes: list[int] = []

        def wait_closed(client: ClientConnection) -> None:
            try:
                client.recv(DEADLINE)
            except ConnectionClosed as closed:
                codes.append(closed.rcvd.code if closed.rcvd is not None else 1006)

        waiters = [threading.Thread(target=wait_closed, args=(client,)) for client in clients]
        for waiter in waiters:
            waiter.start()
        edit(project / "main.py", 'VERSION = "one"', 'VERSION = "two"', server)
        for waiter in waiters:
            waiter.join(DEADLINE)
        assert codes == [1012] * 20, server.lines[-30:]
        for _ in range(20):
            with ws(server, "/echo") as client:
                client.send("version")
                assert client.recv(DEADLINE) == "two"
        load.__exit__()
        load.assert_clean()  # no HTTP request refused or failed meanwhile


def test_stopping_the_server_closes_open_websockets_with_1001(project: Path) -> None:
    server = start(project, "main:app")
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ws(server, "/echo")) for _ in range(5)]
        for client in clients:
            client.send("version")
            assert client.recv(DEADLINE) == "one"
        assert server.stop() == 0  # not held up by the sockets (stop() fails after its own 20 s)
        for client in clients:
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(DEADLINE)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
