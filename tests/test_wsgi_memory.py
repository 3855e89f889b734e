"""handlers/wsgi.py in memory: PEP 3333's server side with a recording responder and an inline pool, no sockets.

The responder stands where the connection does (handlers/exchange.py ``Responder``) and records what the
handler asked of it; the pool runs the app at once, in this thread, and hands back its outcome in order,
as the real pool delivers it on the loop.  Every test runs twice: the call handed to the pool, and the
call made inline (worker/inline.py ``always``), which must answer the same.
"""

from __future__ import annotations

import contextvars
import io
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devserver.handlers.exchange import Exchange
from devserver.handlers.wsgi import FileWrapper, WSGIServer, start_wsgi
from devserver.http.parser import Request
from devserver.worker import inline
from devserver.worker.inline import EARN, InlinePolicy

HELLO = [("Content-Type", "text/plain")]


CALLING = "pool"  # this test's path (the calling fixture): "pool", or "inline" with no hand-off


@pytest.fixture(autouse=True, params=["pool", "inline"])
def calling(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys.modules[__name__], "CALLING", request.param)
    return str(request.param)


class InlinePool:
    """The pool's two paths the handler takes, run at once: ``call`` then its ``done``, and ``post``; its inline policy."""

    def __init__(self, mode: str = "") -> None:
        self.inline = InlinePolicy(mode=mode or ("always" if CALLING == "inline" else "off"))
        self.handed = 0  # calls handed to the pool


    def call(self, done: Callable[[Any, BaseException | None], None], fn: Callable[..., Any], *args: Any) -> None:
        self.handed += 1
        try:
            result = fn(*args)
        except BaseException as error:  # noqa: BLE001 - handed to done, as the pool does
            done(None, error)
            return
        done(result, None)

    def post(self, fn: Callable[..., None], *args: Any) -> bool:
        fn(*args)
        return True


class Recorder:
    """A Responder that records each call in order: ("send", status, headers, body, close), ("start", ...)..."""

    def __init__(self, client: str = "127.0.0.1:5555") -> None:
        self.client = client
        self.closing = False  # True: the client has gone
        self.current: Exchange | None = None
        self.loop: Any = None
        self.calls: list[tuple[Any, ...]] = []

    def send(self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, close: bool = False) -> None:
        self.calls.append(("send", status, headers, body, close))

    def send_error(self, status: int, message: str, detail: str | None = None, *, close: bool = False,
                   report: Any = None) -> None:
        self.calls.append(("error", status, message, detail or ""))

    def start(self, status: int, headers: list[tuple[str, str]], data: bytes = b"") -> None:
        self.calls.append(("start", status, headers, data))

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def finish(self) -> None:
        self.calls.append(("finish",))

    def abort(self) -> None:
        self.calls.append(("abort",))

    def end(self) -> None:
        self.calls.append(("end",))

    def thread_writer(self, post: Callable[..., object]) -> Callable[[bytes], None]:
        return lambda data: post(self.write, data)

    def kinds(self) -> list[str]:
        return [call[0] for call in self.calls]


def wsgi_server(logged: list[str] | None = None, transform: Callable[[bytes], bytes] | None = None,
                pool: InlinePool | None = None) -> WSGIServer:
    return WSGIServer(pool or InlinePool(), ("127.0.0.1", 8000), True, (logged if logged is not None else []).append,
                      transform)


def request(method: str = "GET", target: str = "/app/x?q=1", headers: list[tuple[str, str]] | None = None,
            version: str = "1.1", chunked: bool = False) -> Request:
    return Request(method, target, version, headers if headers is not None else [("Host", "localhost")], True,
                   chunked=chunked)


def run(app: Callable[..., Any], req: Request | None = None, body: bytes = b"", conn: Recorder | None = None,
        server: WSGIServer | None = None, path_info: str = "/x") -> Recorder:
    """Answer one request with ``app``; the recorder holds what was sent, and ``finished`` was called once."""
    conn = conn or Recorder()
    exchange = Exchange(req or request())
    if body:
        exchange.add_body(body)
    conn.current = exchange
    finished: list[bool] = []
    start_wsgi(conn, exchange, app, "/app", path_info, server or wsgi_server(), lambda: finished.append(True))
    assert finished == [True]
    return conn


def environ_of(req: Request, body: bytes = b"", client: str = "127.0.0.1:5555", path_info: str = "/x") -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ, body=environ["wsgi.input"].read())
        start_response("204 No Content", [])
        return []

    run(app, req, body, Recorder(client), path_info=path_info)
    return seen


# -- environ (PEP 3333 "environ Variables") -----------------------------------------------------------------

def test_environ_has_the_cgi_variables_and_the_wsgi_keys() -> None:
    environ = environ_of(request("POST", "/app/x?q=1&r", [("Host", "localhost"), ("Content-Type", "text/plain"),
                                                           ("Content-Length", "5")]), b"hello")
    assert {k: environ[k] for k in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
                                    "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "RAW_URI",
                                    "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_HOST")} == {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "/app", "PATH_INFO": "/x", "QUERY_STRING": "q=1&r",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "5555", "RAW_URI": "/app/x?q=1&r",
        "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "5", "HTTP_HOST": "localhost"}
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["body"] == b"hello"
    assert environ["wsgi.version"] == (1, 0) and environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is True and environ["wsgi.multiprocess"] is True and environ["wsgi.run_once"] is False
    assert environ["wsgi.file_wrapper"] is FileWrapper and environ["wsgi.input_terminated"] is True


def test_path_info_is_decoded_to_bytes_carried_as_latin_1_pep3333_unicode_issues() -> None:
    environ = environ_of(request(target="/app/caf%C3%A9%2Fx"), path_info="/caf%C3%A9%2Fx")
    assert environ["PATH_INFO"] == "/caf\u00c3\u00a9/x"  # the UTF-8 bytes of "café/x" as latin-1 text
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/x"
    assert environ["RAW_URI"] == "/app/caf%C3%A9%2Fx"  # the target as sent, for who must tell %2F from /


def test_an_ipv6_client_address_loses_its_brackets() -> None:
    environ = environ_of(request(), client="[::1]:6000")
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == ("::1", "6000")


def test_repeated_headers_are_joined_with_commas_rfc9110_5_3() -> None:
    environ = environ_of(request(headers=[("Host", "h"), ("Accept", "a/b"), ("X-Tag", "1"), ("accept", "c/d")]))
    assert environ["HTTP_ACCEPT"] == "a/b,c/d" and environ["HTTP_X_TAG"] == "1"


def test_header_names_with_underscores_are_dropped_so_none_can_pass_for_another() -> None:
    """``X_Forwarded_For`` would become HTTP_X_FORWARDED_FOR, the key a proxy's X-Forwarded-For sets."""
    environ = environ_of(request(headers=[("Host", "h"), ("X_Forwarded_For", "1.2.3.4"), ("Content_Length", "99")]))
    assert "HTTP_X_FORWARDED_FOR" not in environ and "CONTENT_LENGTH" not in environ


def test_a_chunked_body_has_its_length_in_content_length_rfc9112_7_1() -> None:
    """The body is read whole before the app runs, so its length is known (PEP 3333 wsgi.input)."""
    environ = environ_of(request("POST", headers=[("Host", "h"), ("Transfer-Encoding", "chunked")], chunked=True),
                         b"0123456789")
    assert environ["CONTENT_LENGTH"] == "10" and environ["body"] == b"0123456789"


def test_http_10_is_the_server_protocol_of_an_http_10_request() -> None:
    assert environ_of(request(version="1.0", headers=[]))["SERVER_PROTOCOL"] == "HTTP/1.0"


# -- start_response (PEP 3333 "The start_response() Callable") ----------------------------------------------

def app_answering(status: str, headers: list[Any], body: list[bytes] | None = None) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, headers)
        return body if body is not None else [b"ok"]
    return app


def test_a_list_body_is_sent_whole_with_the_apps_status_and_headers() -> None:
    conn = run(app_answering("201 Created", [*HELLO, ("X-A", "1")], [b"one ", b"two"]))
    assert conn.calls == [("send", 201, [*HELLO, ("X-A", "1")], b"one two", False), ("end",)]


@pytest.mark.parametrize("status", ["20 OK", "2000 OK", "abc OK", "099 Low", ""])
def test_an_invalid_status_is_a_500_that_says_so(status: str) -> None:
    conn = run(app_answering(status, HELLO))
    assert conn.kinds() == ["error", "end"] and conn.calls[0][1] == 500
    assert f"AppError: invalid status {status!r}" in conn.calls[0][3]


@pytest.mark.parametrize(("headers", "says"), [
    ([("X-A", "a\r\nInjected: 1")], "invalid header 'X-A'"),  # response splitting (RFC 9110 §5.5)
    ([("X-A", "a\nb")], "invalid header 'X-A'"),
    ([("Bad Name", "v")], "invalid header 'Bad Name'"),
    ([("", "v")], "invalid header ''"),
    ([("X-A", 1)], "names and values must be str"),
    ([(b"X-A", "1")], "names and values must be str"),
    ([("Content-Length", "ten")], "invalid Content-Length 'ten'"),
])
def test_an_invalid_header_is_a_500_that_says_so(headers: list[Any], says: str) -> None:
    conn = run(app_answering("200 OK", headers))
    assert conn.kinds() == ["error", "end"] and says in conn.calls[0][3]


def test_hop_by_hop_headers_are_the_servers_and_connection_and_framing_go_on_to_framing() -> None:
    """PEP 3333 "Other HTTP Features": the server owns connection management (RFC 9110 §7.6.1).

    The fields only a proxy may use are dropped here; ``Connection`` and
    ``Transfer-Encoding`` go on to ``framing.framing_of``, the one place that reads
    an app's ``close`` and decides the framing (tests/test_connection_memory.py
    checks the wire).
    """
    hop = [("Keep-Alive", "timeout=5"), ("Upgrade", "h2c"), ("TE", "trailers"), ("Trailers", "X"),
           ("Proxy-Authenticate", "x"), ("Proxy-Authorization", "y")]
    framing = [("Connection", "close"), ("Transfer-Encoding", "chunked")]
    conn = run(app_answering("200 OK", [*HELLO, *hop, *framing]))
    assert conn.calls == [("send", 200, [*HELLO, *framing], b"ok", False), ("end",)]


def test_start_response_twice_without_exc_info_is_a_500() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", HELLO)
        start_response("404 Not Found", HELLO)
        return [b"x"]

    conn = run(app)
    assert conn.kinds() == ["error", "end"] and "start_response called twice without exc_info" in conn.calls[0][3]


def test_exc_info_before_the_head_is_sent_replaces_the_status_and_headers() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", HELLO)
        try:
            raise ValueError("late trouble")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/html")], sys.exc_info())
        return [b"<p>sorry</p>"]

    assert run(app).calls == [("send", 503, [("Content-Type", "text/html")], b"<p>sorry</p>", False), ("end",)]


def test_exc_info_after_the_head_is_sent_reraises_and_the_connection_is_aborted() -> None:
    """PEP 3333: start_response must re-raise once headers are sent; a 500 can no longer be sent."""
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", HELLO)
        yield b"first"
        try:
            raise ValueError("mid-body trouble")
        except ValueError:
            start_response("500 Internal Server Error", HELLO, sys.exc_info())
        yield b"never"

    conn = run(app)
    assert conn.calls == [("start", 200, HELLO, b"first"), ("abort",), ("end",)]


def test_returning_without_start_response_is_a_500() -> None:
    conn = run(lambda environ, start_response: [b"no head"])
    assert conn.kinds() == ["error", "end"] and "the app returned without calling start_response()" in conn.calls[0][3]


def test_start_response_may_wait_for_the_first_iteration() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", HELLO)  # in a generator: runs only when the server iterates
        yield b"a"
        yield b"b"

    assert run(app).calls == [("start", 200, HELLO, b"a"), ("write", b"b"), ("finish",)]


def test_an_empty_generator_that_called_start_response_is_sent_whole() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("204 No Content", [])
        yield from ()

    assert run(app).calls == [("send", 204, [], b"", False), ("end",)]


def test_an_app_exception_before_the_head_is_a_500_with_the_apps_traceback() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom in the app")

    conn = run(app)
    assert conn.kinds() == ["error", "end"]
    status, message, detail = conn.calls[0][1:]
    assert status == 500 and message == "The application raised an exception."
    assert "RuntimeError: boom in the app" in detail and "in app" in detail


def test_a_body_that_is_not_bytes_is_refused() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[Any]:
        start_response("200 OK", HELLO)
        yield "text, not bytes"

    conn = run(app)
    assert conn.kinds() == ["error", "end"] and "the app must send bytes, not str" in conn.calls[0][3]


# -- the write() callable -----------------------------------------------------------------------------------

def test_write_sends_the_head_with_its_first_bytes_then_the_rest_in_order() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", HELLO)
        write(b"one ")
        write(b"")  # nothing to send: no write
        write(b"two ")
        return [b"three"]

    assert run(app).calls == [("start", 200, HELLO, b"one "), ("write", b"two "), ("write", b"three"), ("finish",)]


# -- the iterable's close() (PEP 3333: called however the request ends) -------------------------------------

class Body:
    """An iterable body with a close(), recording what happened to it."""

    def __init__(self, parts: list[bytes], fail_at: int | None = None, close_fails: bool = False) -> None:
        self.parts, self.fail_at, self.close_fails = parts, fail_at, close_fails
        self.closed = 0
        self.given = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, part in enumerate(self.parts):
            if index == self.fail_at:
                raise RuntimeError("the body broke")
            self.given += 1
            yield part

    def close(self) -> None:
        self.closed += 1
        if self.close_fails:
            raise OSError("close failed")


def serving(body: Body) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", HELLO)
        return body
    return app


def test_close_is_called_once_after_a_body_is_sent() -> None:
    body = Body([b"a", b"b"])
    assert run(serving(body)).calls == [("start", 200, HELLO, b"a"), ("write", b"b"), ("finish",)]
    assert body.closed == 1


def test_close_is_called_when_the_body_raises_and_the_connection_is_aborted() -> None:
    body = Body([b"a", b"b", b"c"], fail_at=1)
    assert run(serving(body)).calls == [("start", 200, HELLO, b"a"), ("abort",), ("end",)]
    assert body.closed == 1


def test_close_is_called_when_the_client_has_gone_and_the_body_is_not_read_on() -> None:
    body = Body([b"a"] * 100)
    conn = Recorder()
    conn.closing = True  # the client left before the first bytes
    assert run(serving(body), conn=conn).calls == [("abort",), ("end",)]
    assert body.closed == 1 and body.given == 1


def test_a_failing_close_is_logged_to_wsgi_errors_and_the_answer_stands() -> None:
    logged: list[str] = []
    body = Body([b"a"], close_fails=True)
    conn = run(serving(body), server=wsgi_server(logged))
    assert conn.calls == [("start", 200, HELLO, b"a"), ("finish",)]
    assert any("OSError: close failed" in line for line in logged)


def test_close_is_kept_when_start_response_waits_for_the_first_iteration() -> None:
    closed: list[bool] = []

    class Late:
        def __init__(self, start_response: Any) -> None:
            self.start_response = start_response

        def __iter__(self) -> Iterator[bytes]:
            self.start_response("200 OK", HELLO)
            yield b"late"

        def close(self) -> None:
            closed.append(True)

    assert run(lambda environ, start_response: Late(start_response)).calls == [("start", 200, HELLO, b"late"), ("finish",)]
    assert closed == [True]


# -- what the server does to a whole body -----------------------------------------------------------------

def test_a_whole_html_page_gets_the_transform_and_its_stale_content_length_goes() -> None:
    page = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "13")]
    server = wsgi_server(transform=lambda body: body.replace(b"</body>", b"<script></script></body>"))
    conn = run(app_answering("200 OK", page, [b"<body></body>"]), server=server)
    # framing.framing_of announces the length of the body it is given: decided once, there.
    assert conn.calls[0] == ("send", 200, [page[0]], b"<body><script></script></body>", False)


@pytest.mark.parametrize(("status", "headers"), [
    ("200 OK", [("Content-Type", "text/plain")]),
    ("200 OK", [("Content-Type", "text/html"), ("Content-Encoding", "gzip")]),  # compressed: not touched
    ("404 Not Found", [("Content-Type", "text/html")]),
])
def test_other_bodies_are_sent_as_the_app_made_them(status: str, headers: list[tuple[str, str]]) -> None:
    server = wsgi_server(transform=lambda body: b"changed")
    conn = run(app_answering(status, headers, [b"<body></body>"]), server=server)
    assert conn.calls[0][3] == b"<body></body>"


def test_wsgi_errors_lines_are_logged_and_a_last_unfinished_one_at_the_end() -> None:
    logged: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("one\ntwo")
        environ["wsgi.errors"].writelines([" and more\n", "last"])
        start_response("200 OK", HELLO)
        return [b""]

    run(app, server=wsgi_server(logged))
    assert logged == ["one", "two and more", "last"]


def test_file_wrapper_iterates_a_file_like_without_fileno_in_blocks() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", HELLO)
        return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 10), 4)

    assert run(app).calls == [("start", 200, HELLO, b"xxxx"), ("write", b"xxxx"), ("write", b"xx"), ("finish",)]


# -- inline calls (worker/inline.py) ---------------------------------------------------------------------------

def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", HELLO)
    return [b"hi"]


def test_a_route_whose_pool_calls_were_quick_is_called_without_the_pool_and_answers_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inline, "SLOW", 60.0)  # every call of this machine's is quick, however busy it is
    pool = InlinePool("record")
    server = wsgi_server(pool=pool)
    answers = [run(hello, server=server).calls for _ in range(EARN + 3)]
    assert pool.handed == EARN  # then inline: no more hand-offs
    assert all(calls == answers[0] for calls in answers)


def test_a_context_variable_the_app_sets_inline_ends_with_its_call() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(var.get())
        var.set(environ["QUERY_STRING"])
        start_response("200 OK", HELLO)
        return [b""]

    server = wsgi_server()
    run(app, request(target="/app/x?first"), server=server)
    run(app, request(target="/app/x?second"), server=server)
    assert seen == ["unset", "unset"] and var.get() == "unset"


def test_an_app_failing_inline_has_its_own_frames_in_the_traceback_not_the_servers() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom in the app")

    detail = run(app).calls[0][3]
    assert "in app" in detail
    for server_frame in ("_run_inline", "call_without_running_loop", "start_wsgi", "call_with"):
        assert server_frame not in detail
