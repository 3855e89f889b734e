"""The server side of PEP 3333, through a live server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import held_in_app, http_exchange, raw, read_all, read_responses


def request(server, target: str, method: str = "GET", body: bytes = b"", headers: bytes = b"", close: bool = True):
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost:8080\r\n".encode() + headers
    if body:
        head += b"Content-Length: %d\r\n" % len(body)
    if close:
        head += b"Connection: close\r\n"
    with server.connect() as sock:
        return http_exchange(sock, head + b"\r\n" + body)[0]


def test_environ_is_complete(server) -> None:
    status, _, body = request(server, "/environ_dump.py/a%20b/%C3%A9?x=1&y=%202", "POST", b"abc",
                              b"Content-Type: text/plain\r\nX-Twice: 1\r\nX-Twice: 2\r\n")
    env = json.loads(body)
    assert status == 200
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/environ_dump.py"
    assert env["PATH_INFO"] == "/a b/" + "é".encode().decode("latin-1")  # PEP 3333: bytes as latin-1
    assert env["QUERY_STRING"] == "x=1&y=%202"
    assert env["CONTENT_TYPE"] == "text/plain" and env["CONTENT_LENGTH"] == "3"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1" and env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_HOST"] == "localhost:8080" and env["HTTP_X_TWICE"] == "1,2"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["wsgi.version"] == [1, 0] and env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True and env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False and env["wsgi.file_wrapper_present"] is True
    server.wait_for(r"pid \d+ environ_dump says hello")  # wsgi.errors reaches the log


def test_multiprocess_is_true_with_several_workers(server_factory) -> None:
    server = server_factory("--workers", "2")
    assert json.loads(request(server, "/environ_dump.py")[2])["wsgi.multiprocess"] is True


@pytest.mark.parametrize("target,method,body", [
    ("/validated.py", "GET", b""),
    ("/validated.py/deep/path?q=1", "GET", b""),
    ("/validated.py", "POST", b"x" * 5000),
    ("/validated.py", "HEAD", b""),
])
def test_server_passes_wsgiref_validator(server, target: str, method: str, body: bytes) -> None:
    status, headers, data = request(server, target, method, body)
    assert status == 200, data[:2000]
    if method == "POST":
        assert data.endswith(b" 5000")


def test_chunked_upload_reaches_wsgi_input_in_full(server) -> None:
    data = raw(server, b"POST /validated.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                       b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert data.endswith(b"POST /validated.py  7")


def test_close_is_always_called(server) -> None:
    before = int(request(server, "/contract.py/closed")[2])
    assert request(server, "/contract.py/close-called")[2] == b"ab"
    raw(server, b"GET /contract.py/fail-after-headers HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert int(request(server, "/contract.py/closed")[2]) == before + 2


def test_exception_after_headers_closes_the_connection(server) -> None:
    data = raw(server, b"GET /contract.py/fail-after-headers HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and b"first" in data
    assert not data.endswith(b"0\r\n\r\n"), "the chunked body must not look complete"
    server.wait_for("ValueError: failed while streaming")
    assert request(server, "/contract.py/closed")[0] == 200


def test_start_response_with_exc_info_replaces_headers(server) -> None:
    status, _, body = request(server, "/contract.py/exc-info")
    assert status == 503 and body == b"replaced"


def test_write_callable_and_late_start_response(server) -> None:
    assert request(server, "/contract.py/write")[2] == b"from write, then the iterable"
    assert request(server, "/contract.py/late-start")[2] == b"late"


def test_file_wrapper_is_sent_whole(server, site: Path) -> None:
    status, headers, body = request(server, "/contract.py/file")
    assert status == 200 and body == (site / "dynamic" / "contract.py").read_bytes()
    assert headers["content-length"] == str(len(body))


@pytest.mark.parametrize("delta", [0, 10, -10])
def test_file_wrapper_keeps_to_the_declared_length(server, site: Path, delta: int) -> None:
    """What the app declares is what the client is told; the bytes on the wire match it, or the connection ends.

    Declared more than the file: the client gets the whole file and then the
    close (never a wait for bytes that will not come).  Declared less: the
    body is cut at the declared length and the connection carries the next
    response (the surplus never reached the wire).  Exact: the connection stays.
    """
    source = (site / "dynamic" / "contract.py").read_bytes()
    target = f"/contract.py/file-declared/{delta}".encode()
    with server.connect(timeout=5) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
                     b"GET /contract.py/closed HTTP/1.1\r\nHost: localhost\r\n\r\n")
        if delta <= 0:
            [(status, headers, body), (second, _, _)] = read_responses(sock, 2)
            assert status == 200 and second == 200  # the connection carried both
            assert headers["content-length"] == str(len(source) + delta) and body == source[: len(source) + delta]
            if delta == 0:
                return
        else:
            data = read_all(sock)
            head, _, body = data.partition(b"\r\n\r\n")
            assert f"Content-Length: {len(source) + delta}".encode() in head
            assert body == source  # the whole file, then the close: nothing after it
    # The mismatch is logged with the request.
    server.wait_for(rf"file-declared/{delta} 200 .*declared Content-Length {len(source) + delta}")


@pytest.mark.parametrize("how", ["list", "write", "stream"])
def test_body_longer_than_its_content_length_is_cut_and_the_connection_kept(server, how: str) -> None:
    """The waitress reading: the message sent is whole at its declared length, so the next request is answered."""
    with server.connect(timeout=5) as sock:
        sock.sendall(f"GET /contract.py/long/{how} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        [(status, headers, body)] = read_responses(sock, 1)
        assert (status, headers["content-length"], body) == (200, "5", b"12345")
        sock.sendall(b"GET /contract.py/closed HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        rest = read_all(sock)  # exactly the second response: the cut bytes never reached the wire
    head, _, count = rest.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and count.isdigit()
    server.wait_for(rf"long/{how} 200 .*declared Content-Length 5 but offered 10 bytes; cut at 5")


def test_no_body_for_204_and_head(server) -> None:
    data = raw(server, b"GET /contract.py/no-content HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 204 ") and data.endswith(b"\r\n\r\n")
    data = raw(server, b"HEAD /stream.py HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert data.endswith(b"\r\n\r\n") and b"part" not in data


def test_header_injection_is_refused_with_500(server) -> None:
    status, headers, body = request(server, "/contract.py/bad-header")
    assert status == 500 and "set-cookie" not in headers and b"invalid header" in body


def test_short_body_closes_the_connection(server) -> None:
    data = raw(server, b"GET /contract.py/short HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert data.endswith(b"12345")  # and the server closed: raw() returned


def test_zero_argument_application_and_missing_application(server) -> None:
    status, headers, body = request(server, "/zeroargs.py")
    assert (status, body) == (200, b"zero-argument form works")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    status, _, body = request(server, "/noapp.py")
    assert status == 404 and b"has no &#x27;application&#x27;" in body


@pytest.mark.parametrize("target", [
    "/os.py", "/antigravity.py", "/this.py", "/../conftest.py", "/%2e%2e/x.py", "/a.b.py",
    "/dynamic/echo.py", "/ech%6f.py", "/sys.py", "/__init__.py/x", "/.hidden.py",
])
def test_only_modules_inside_dynamic_are_imported(server, target: str) -> None:
    status, _, body = request(server, target)
    assert status in (400, 404), (target, status)
    assert "antigravity" not in sys.modules
    status, _, body = request(server, "/environ_dump.py")
    assert "antigravity" not in json.loads(body).get("imported", "")


def test_module_callable_app_answers_paths_that_are_not_files(server_factory) -> None:
    server = server_factory("webapp:app", "--workers", "1")
    assert request(server, "/some/route")[2] == b"webapp /some/route"
    assert b"fixture index" in request(server, "/")[2]  # "/" resolves to index.html, a file: it wins
    assert request(server, "/no/such/file.txt")[2] == b"webapp /no/such/file.txt"
    assert request(server, "/one_k.txt")[2] == b"x" * 1024  # files win
    assert request(server, "/echo.py")[0] == 200  # /name.py still runs dynamic modules


def test_a_project_app_without_html_page_serves_a_file_made_under_it_at_once(server_factory, tmp_path: Path) -> None:
    # Run in a project folder that has no html_page/: every path is the APP's, until the root and a file in
    # it are made; the next request (on either worker) is the file's.
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'app ' + environ['PATH_INFO'].encode()]\n")
    server = server_factory("notes:app", "--workers", "2", cwd=project)
    for _ in range(4):
        assert request(server, "/todo.txt")[2] == b"app /todo.txt"
        assert request(server, "/")[2] == b"app /"
    (project / "html_page").mkdir()
    (project / "html_page" / "todo.txt").write_bytes(b"a file now")
    for _ in range(4):  # fresh connections: both workers answer
        assert request(server, "/todo.txt")[2] == b"a file now"
        assert request(server, "/other")[2] == b"app /other"


def test_a_slow_app_does_not_hold_up_another_app_on_the_same_worker(server) -> None:
    """Another app is answered while a slow one holds its request (in order; bench/held_up.py has the figure)."""
    with held_in_app(server) as answer:
        assert request(server, "/echo.py")[0] == 200
        assert not answer


def test_html_from_an_app_gets_the_live_reload_script(server_factory) -> None:
    server = server_factory("--workers", "1")
    status, headers, body = request(server, "/contract.py/html")
    assert status == 200 and body.startswith(b"<html><body>app page")
    assert b"/__devserver__/livereload.js" in body and headers["content-length"] == str(len(body))
    server = server_factory("--workers", "1", "--no-livereload")
    assert request(server, "/contract.py/html")[2] == b"<html><body>app page</body></html>"


def test_a_connection_close_response_larger_than_the_sockets_buffers_arrives_whole_before_the_close(server) -> None:
    """The close after a response waits for what the transport still holds (only an empty one is closed at once)."""
    body = b"x" * (6 * 1024 * 1024)  # the echo's JSON of it outgrows the kernel's buffers: the transport keeps the rest
    status, _, answer = request(server, "/echo.py", "POST", body)
    assert status == 200
    assert json.loads(answer)["body"] == body.decode()
