"""Hostile input against a live server: every answer is a well-formed response or a clean close."""

from __future__ import annotations

import socket

import h11
import pytest
from conftest import LiveServer, http_exchange, raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID = [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /echo.py/x?y=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HEAD /one_k.txt HTTP/1.0\r\n\r\n",
    b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=10-20\r\n\r\n",
]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> LiveServer:
    from conftest import FIXTURE_APPS

    base = tmp_path_factory.mktemp("hostile")
    (base / "html_page").mkdir()
    (base / "html_page" / "index.html").write_text("<html><body>hi</body></html>")
    (base / "html_page" / "one_k.txt").write_bytes(b"x" * 1024)
    (base / "dynamic").mkdir()
    (base / "dynamic" / "echo.py").write_text((FIXTURE_APPS / "echo.py").read_text())
    (base / "secret.txt").write_text("outside the root")
    server = LiveServer(["--workers", "1", "--header-timeout", "2"], base).start()
    yield server
    assert server.stop() == 0


def exchange_raw(server: LiveServer, data: bytes) -> bytes:
    return raw(server, data, half_close=True)

def assert_well_formed(stream: bytes, head_only: bool = False) -> list[int]:
    """Parse the server's byte stream as HTTP/1.1 responses; returns their statuses."""
    statuses: list[int] = []
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(stream)
    conn.receive_data(b"")
    while stream:
        conn.send(h11.Request(method="HEAD" if head_only else "GET", target="/", headers=[("Host", "a")]))
        conn.send(h11.EndOfMessage())
        while True:
            event = conn.next_event()
            assert event is not h11.NEED_DATA, "response cut short"
            if isinstance(event, h11.Response):
                assert 100 <= event.status_code < 600
                statuses.append(event.status_code)
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        if isinstance(event, h11.ConnectionClosed) or conn.their_state is h11.CLOSED or conn.their_state is h11.MUST_CLOSE:
            break
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            break
        if conn.next_event() is h11.ConnectionClosed or conn.trailing_data[1]:
            break
    return statuses


def mutate(data: bytes, ops: list[tuple[int, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, payload in ops:
        if not buf:
            buf.extend(payload)
            continue
        pos %= len(buf)
        if kind == 0:
            buf[pos : pos + 1] = payload  # replace
        elif kind == 1:
            buf[pos:pos] = payload  # insert
        else:
            del buf[pos : pos + len(payload) + 1]  # delete
    return bytes(buf)


mutations = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(VALID), ops=mutations)
def test_mutated_requests_get_a_response_or_a_clean_close(shared_server: LiveServer, base: bytes, ops) -> None:
    stream = exchange_raw(shared_server, mutate(base, ops))
    if stream:
        assert stream.startswith(b"HTTP/1.")
        if not stream.startswith(b"HTTP/1.1 100"):
            statuses = assert_well_formed(stream, head_only=b"HEAD" in base[:5])
            assert 500 not in statuses, "no fixture app here raises: a 500 would be the server's own fault"
    assert_alive(shared_server)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=2048))
def test_random_bytes_get_a_response_or_a_clean_close(shared_server: LiveServer, data: bytes) -> None:
    stream = exchange_raw(shared_server, data)
    if stream:
        assert stream.startswith(b"HTTP/1.1 4") or stream.startswith(b"HTTP/1.1 5") or stream.startswith(b"HTTP/1."), stream[:80]
        assert_well_formed(stream)
    assert_alive(shared_server)


def assert_alive(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        [(status, _, body)] = http_exchange(sock, b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status == 200 and body == b"x" * 1024


TRAVERSALS = [
    "/../secret.txt", "/..%2fsecret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/%2e%2e%2fsecret.txt",
    "/..%5csecret.txt", "/..\\secret.txt", "/%252e%252e/secret.txt", "/.%2e/secret.txt", "//secret.txt",
    "/%c0%ae%c0%ae/secret.txt", "/..%00/secret.txt", "/secret.txt%00.html", "/./../secret.txt",
    "/html_page/../../secret.txt", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/../../../../etc/passwd",
    "/..;/secret.txt", "/%u002e%u002e/secret.txt", "/.../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_traversal_in_every_encoding_never_escapes_the_root(shared_server: LiveServer, target: str) -> None:
    stream = exchange_raw(shared_server, f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode("latin-1"))
    assert b"outside the root" not in stream and b"root:" not in stream
    assert stream.startswith((b"HTTP/1.1 400", b"HTTP/1.1 404")), stream[:60]


@pytest.mark.parametrize("target", ["/os.py", "/subprocess.py", "/..%2fconftest.py", "/%2e%2e/x.py", "/json.decoder.py", "/echo%2epy"])
def test_imports_outside_dynamic_are_refused(shared_server: LiveServer, target: str) -> None:
    stream = exchange_raw(shared_server, f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    assert stream.startswith((b"HTTP/1.1 400", b"HTTP/1.1 404")), stream[:60]
