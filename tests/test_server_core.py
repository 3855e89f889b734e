"""The server core end to end: real sockets on 127.0.0.1, real worker processes."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import held_in_app, http_exchange, raw, read_responses


def get(server, target: str, extra: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    with server.connect() as sock:
        return http_exchange(sock, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + extra + b"\r\n")[0]


def test_static_index_and_404(server) -> None:
    status, headers, body = get(server, "/")
    assert status == 200 and b"fixture index" in body
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "date" in headers and headers["server"].startswith("devserver/")
    status, headers, body = get(server, "/missing.html")
    assert status == 404 and b"File Not found" in body


def test_keep_alive_serves_many_requests_on_one_connection(server) -> None:
    with server.connect() as sock:
        for _ in range(5):
            [(status, headers, body)] = http_exchange(sock, b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert status == 200 and body == b"x" * 1024
            assert headers.get("connection") != "close"


def test_connection_close_is_honoured(server) -> None:
    data = raw(server, b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data
    assert data.endswith(b"x" * 1024)


def test_http_10_gets_an_http_10_response_and_close(server) -> None:
    data = raw(server, b"GET /one_k.txt HTTP/1.0\r\n\r\n")
    assert data.startswith(b"HTTP/1.0 200 OK") and data.endswith(b"x" * 1024)


def test_pipelined_requests_are_answered_in_order(server) -> None:
    targets = ["/echo.py/1", "/one_k.txt", "/slow.py?s=0.3", "/echo.py/4", "/missing", "/echo.py/6"]
    data = b"".join(b"GET " + t.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n" for t in targets)
    with server.connect() as sock:
        responses = http_exchange(sock, data, len(targets))
    assert [r[0] for r in responses] == [200, 200, 200, 200, 404, 200]
    assert json.loads(responses[0][2])["path_info"] == "/1"
    assert responses[2][2] == b"slept 0.3"
    assert json.loads(responses[3][2])["path_info"] == "/4"
    assert json.loads(responses[5][2])["path_info"] == "/6"


def test_request_body_with_content_length_and_chunked(server) -> None:
    with server.connect() as sock:
        [(s1, _, b1)] = http_exchange(sock, b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello world")
        [(s2, _, b2)] = http_exchange(sock, b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
    assert s1 == s2 == 200
    assert json.loads(b1)["body"] == json.loads(b2)["body"] == "hello world"
    assert json.loads(b2)["content_length"] == "11"


def test_expect_100_continue(server) -> None:
    with server.connect() as sock:
        sock.settimeout(5)
        sock.sendall(b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        [(status, _, body)] = read_responses(sock, 1, b"POST")
    assert status == 200 and json.loads(body)["body"] == "data"


def test_head_has_headers_and_no_body(server) -> None:
    data = raw(server, b"HEAD /one_k.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 1024" in head and body == b""


def test_chunked_response_for_a_streaming_app(server) -> None:
    data = raw(server, b"GET /stream.py HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in data
    assert data.endswith(b"0\r\n\r\n")
    data = raw(server, b"GET /stream.py HTTP/1.0\r\n\r\n")
    assert b"Transfer-Encoding" not in data and data.endswith(b"part 4\n")


def test_large_file_is_sent_whole(server, site) -> None:
    status, headers, body = get(server, "/big.bin")
    assert status == 200 and body == (site / "html_page" / "big.bin").read_bytes()


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-Many: y\r\n" * 120 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"y" * 70_000 + b"\r\n\r\n", 431),
    (b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400),
    (b"GET / HTTP/1.1\nHost: t\n\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\x00\r\n\r\n", 400),
    (b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400),
])
def test_protocol_errors_get_a_status_and_close_and_the_worker_serves_on(server, request_bytes: bytes, status: int) -> None:
    data = raw(server, request_bytes)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:200]
    assert b"Connection: close" in data.split(b"\r\n\r\n")[0]
    assert get(server, "/one_k.txt")[0] == 200


def test_body_over_max_body_is_413(server_factory) -> None:
    server = server_factory("--workers", "1", "--max-body", "1K")
    data = raw(server, b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n" + b"a" * 5000)
    assert data.startswith(b"HTTP/1.1 413 ")
    with server.connect() as sock:
        [(status, _, _)] = http_exchange(sock, b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n" + b"a" * 1000)
    assert status == 200


def test_slow_header_gets_408_and_idle_keepalive_is_closed(server_factory) -> None:
    """A head unfinished after --header-timeout gets a 408; a kept-alive connection idle past
    --keepalive-timeout is closed without a word.  The client waits 10 s for each (a deadline,
    not a measure: how soon they come is the timers' business, tested in memory)."""
    server = server_factory("--workers", "1", "--header-timeout", "1", "--keepalive-timeout", "1")
    data = raw(server, b"GET / HTTP/1.1\r\nHost: localhost\r\n", timeout=10)
    assert data.startswith(b"HTTP/1.1 408 ")
    with server.connect() as sock:
        http_exchange(sock, b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(10) == b""  # closed by the server, silently


def test_a_slow_app_an_idle_connection_and_a_slow_client_do_not_hold_up_others(server) -> None:
    """One worker: while all three are pending, static and app requests are answered.

    The slow request is held in the app until the test lets it go (``held_in_app``), and the others
    are asked only once it is known to be there: they must all be answered before it is.  (How fast
    they are answered meanwhile is a figure for bench/held_up.py, not an assertion.)"""
    idle = server.connect()
    http_exchange(idle, b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")  # now idle, kept alive
    slow_client = server.connect()
    slow_client.sendall(b"GET / HTTP/1.1\r\nHo")  # a head that is not finished
    with held_in_app(server) as answer:
        for _ in range(10):
            assert get(server, "/one_k.txt")[0] == 200
            assert json.loads(get(server, "/echo.py")[2])["method"] == "GET"
        assert not answer, "the slow request was answered before it was let go"
    idle.close()
    slow_client.close()


def test_app_exception_gives_500_with_traceback_and_the_event_carries_it(server) -> None:
    status, _, body = get(server, "/boom.py")
    assert status == 500 and b"RuntimeError: boom from the fixture app" in body
    server.wait_for(r"GET /boom\.py 500")
    server.wait_for(r"RuntimeError: boom from the fixture app")
    assert get(server, "/one_k.txt")[0] == 200


def test_console_log_line_has_the_request_fields(server) -> None:
    get(server, "/one_k.txt?x=1")
    line = server.wait_for(r"GET /one_k\.txt\?x=1")
    pid = server.worker_pids()[0]
    assert "127.0.0.1:" in line and " 200 " in line and ("1.2K" in line or "1.3K" in line)
    assert "ms" in line and f"pid {pid}" in line


def test_many_concurrent_connections_across_workers(server_factory) -> None:
    server = server_factory("--workers", "2")
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with server.connect() as sock:
                for _ in range(20):
                    [(status, _, body)] = http_exchange(sock, b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    assert status == 200 and len(body) == 1024
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_1_gib_file_costs_the_worker_only_a_few_mib(server, site) -> None:
    huge = site / "html_page" / "huge.bin"
    with open(huge, "wb") as f:
        f.truncate(1024**3)  # sparse: instant to make, still 1 GiB to send
    get(server, "/one_k.txt")
    pid = server.worker_pids()[0]
    before = _peak_rss_kib(pid)
    received = 0
    with server.connect(timeout=60) as sock:
        sock.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        head, _, rest = head.partition(b"\r\n\r\n")
        received = len(rest)
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            received += len(data)
    assert b"Content-Length: 1073741824" in head
    assert received == 1024**3
    growth_mib = (_peak_rss_kib(pid) - before) / 1024
    assert growth_mib < 8, f"worker peak memory grew by {growth_mib:.1f} MiB"


def test_streamed_and_whole_answers_mixed_on_many_connections(server_factory) -> None:
    """A streamed answer is finished only after the head and body its thread queued on the loop.

    With many connections, app results come back to the loop in batches; a
    batch can be delivered ahead of a streaming thread's own writes.  Every
    response must still arrive whole, and the worker log no loop error.
    """
    import http.client

    server = server_factory("--workers", "1", "--threads", "8")
    failures: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for i in range(40):
                path = "/stream.py" if i % 2 else "/echo.py"
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200 or (path == "/stream.py" and not body.endswith(b"part 4\n")):
                    failures.append(f"{path}: {response.status} {body[-40:]!r}")
        except (OSError, http.client.HTTPException) as exc:
            failures.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:5]
    assert not [line for line in server.lines if "Exception in callback" in line or "Traceback" in line]
