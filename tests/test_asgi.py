"""The server side of ASGI in memory: the scope, receive/send onto a Responder, lifespan, detection, discovery."""

from __future__ import annotations

import asyncio
import gzip
import threading
from pathlib import Path
from typing import Any

import pytest

from devserver.apps.discover import app_in, discover
from devserver.apps.protocol import is_asgi
from devserver.handlers.asgi import CHUNK, ASGIApplication, ASGIServer, http_scope, start_asgi
from devserver.handlers.asgiinject import with_livereload_asgi
from devserver.handlers.exchange import Exchange
from devserver.handlers.lifespan import Lifespan, LifespanKeeper
from devserver.http.framing import HeaderBlock, Headers, framing_of
from devserver.http.parser import Request

SERVER = ASGIServer(("127.0.0.1", 8000), lambda line: None)


def fields(headers: Headers) -> list[tuple[str, str]]:
    """The header fields a handler gave, as a list (a HeaderBlock holds those framing keeps)."""
    return list(headers.fields) if isinstance(headers, HeaderBlock) else headers


class FakeConn:
    """A Responder that records what the handler did with it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.client = "127.0.0.1:50123"
        self.closing = False
        self.eof = False
        self.current: Exchange | None = None
        self.write_gate: threading.Event | None = None
        self.calls: list[tuple[Any, ...]] = []
        self.given: list[Headers] = []  # the headers of each send and start, as the handler gave them

    def begin(self, exchange: Exchange) -> None:
        self.current = exchange

    def end(self) -> None:
        self.calls.append(("end",))

    def send(self, status: int, headers: Headers, body: bytes = b"", *, close: bool = False) -> None:
        self.given.append(headers)
        self.calls.append(("send", status, fields(headers), body, close))

    def send_error(self, status: int, message: str, detail: str | None = None, *, close: bool = False,
                   report: Any = None) -> None:
        self.calls.append(("error", status, message, detail, report))

    def start(self, status: int, headers: Headers, data: bytes = b"") -> None:
        self.given.append(headers)
        self.calls.append(("start", status, fields(headers), data))

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def finish(self) -> None:
        self.calls.append(("finish",))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort",))


def exchange_for(method: str = "GET", target: str = "/", headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"") -> Exchange:
    exchange = Exchange(Request(method, target, "1.1", headers or [("Host", "localhost")], True))
    if body:
        exchange.add_body(body)
    return exchange


def serve(app: Any, exchange: Exchange | None = None, conn_setup: Any = None) -> tuple[FakeConn, Exchange, list[str]]:
    """Run ``app`` for one request to its end; returns the connection's calls and when ``finished`` came."""
    exchange = exchange or exchange_for()
    marks: list[str] = []

    async def main() -> FakeConn:
        conn = FakeConn(asyncio.get_running_loop())
        if conn_setup is not None:
            conn_setup(conn)
        conn.begin(exchange)
        task = start_asgi(conn, exchange, ASGIApplication(app, "test:app"), "", SERVER,  # type: ignore[arg-type]
                          lambda: marks.append("finished"))
        await task
        marks.append("returned")
        return conn

    return asyncio.run(main()), exchange, marks


def test_http_scope_carries_what_the_spec_lists() -> None:
    async def main() -> dict[str, Any]:
        conn = FakeConn(asyncio.get_running_loop())
        exchange = exchange_for("POST", "/caf%C3%A9/x?a=1&b=%20", [("Host", "localhost"), ("X-Thing", "Yes")])
        return dict(http_scope(conn, exchange, "/root", SERVER, {"db": "conn"}))

    scope = asyncio.run(main())
    assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["method"], scope["scheme"]) == ("1.1", "POST", "http")
    assert scope["path"] == "/café/x" and scope["raw_path"] == b"/caf%C3%A9/x"
    assert scope["query_string"] == b"a=1&b=%20" and scope["root_path"] == "/root"
    assert scope["headers"] == [(b"host", b"localhost"), (b"x-thing", b"Yes")]
    assert scope["client"] == ("127.0.0.1", 50123) and scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {"db": "conn"}


def test_each_request_gets_a_copy_of_the_lifespan_state() -> None:
    state = {"counter": 1}

    async def main() -> None:
        conn = FakeConn(asyncio.get_running_loop())
        scope = http_scope(conn, exchange_for(), "", SERVER, state)
        scope["state"]["added"] = True

    asyncio.run(main())
    assert state == {"counter": 1}


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"connection", b"close"), (b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


def test_a_body_in_one_event_is_one_send_and_hop_by_hop_headers_are_the_servers() -> None:
    conn, _, marks = serve(hello)
    # Connection is framing's to read (http/framing.py): the one place that decides the app's "close" closes.
    assert conn.calls == [("send", 200, [("content-type", "text/plain"), ("x-a", "1")], b"hello", False), ("end",)]
    assert framing_of(200, conn.given[0], method="GET", version="1.1", close=False).close
    assert marks == ["finished", "returned"]


def test_more_body_streams_through_start_write_finish() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"c"})

    conn, _, _ = serve(app)
    assert conn.calls == [("start", 200, [], b"a"), ("write", b"b"), ("write", b"c"), ("finish",)]


def test_work_after_the_response_does_not_hold_the_connection() -> None:
    order: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        order.append("background work")

    def finished_first(conn: FakeConn) -> None:
        conn.end = lambda: order.append("response complete")  # type: ignore[method-assign]

    _, _, marks = serve(app, conn_setup=finished_first)
    assert order == ["response complete", "background work"] and marks == ["finished", "returned"]


def test_an_app_raising_before_its_response_gets_the_500_page_with_its_traceback() -> None:
    async def failing_view(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("missing thing")

    conn, exchange, _ = serve(failing_view)
    (kind, status, message, detail, report), end = conn.calls
    assert (kind, status, end) == ("error", 500, ("end",))
    assert "KeyError: 'missing thing'" in detail and exchange.traceback == detail
    assert report.frames[-1].function == "failing_view"  # the app's frame, not the server's
    assert report.method == "GET" and report.target == "/"


def test_a_frameworks_bare_500_then_its_raise_becomes_devservers_page() -> None:
    async def starlette_like(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise RuntimeError("the view's error")

    conn, _, _ = serve(starlette_like)
    assert [call[0] for call in conn.calls] == ["error", "end"]
    assert "RuntimeError: the view's error" in conn.calls[0][3]


def test_a_500_the_app_returns_normally_goes_out_as_it_was() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"down for maintenance"})

    conn, _, _ = serve(app)
    assert conn.calls == [("send", 503, [], b"down for maintenance", False), ("end",)]


def test_a_raise_after_streaming_started_closes_the_connection_and_keeps_the_traceback() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("mid-stream")

    conn, exchange, _ = serve(app)
    assert conn.calls == [("start", 200, [], b"part"), ("abort",), ("end",)]
    assert exchange.close and "ValueError: mid-stream" in (exchange.traceback or "")


@pytest.mark.parametrize(("messages", "problem"), [
    ([], "returned without starting a response"),
    ([{"type": "http.response.body", "body": b"x"}], "http.response.body sent before http.response.start"),
    ([{"type": "http.response.start", "status": "200"}], "invalid status '200'"),
    ([{"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"v")]}], "invalid header"),
    ([{"type": "http.response.start", "status": 200, "headers": [("str", "str")]}], "pair of bytes"),
    ([{"type": "websocket.accept"}], "unexpected ASGI message 'websocket.accept'"),
])
def test_a_broken_contract_is_a_500_page_saying_what(messages: list[dict[str, Any]], problem: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)

    conn, _, _ = serve(app)
    kind, status, message, detail, _ = conn.calls[0]
    assert (kind, status) == ("error", 500) and problem in (detail or message)


def test_receive_gives_the_body_in_chunks_then_disconnect_once_the_response_is_complete() -> None:
    body = bytes(range(256)) * (CHUNK * 2 // 256 + 10)
    events: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while not events or events[-1].get("more_body"):
            events.append(await receive())
        await hello(scope, receive, send)
        events.append(await receive())

    serve(app, exchange_for("POST", "/", body=body))
    assert [e["type"] for e in events] == ["http.request"] * 3 + ["http.disconnect"]
    assert [e["more_body"] for e in events[:3]] == [True, True, False]
    assert b"".join(e["body"] for e in events[:3]) == body


def test_a_client_gone_mid_stream_is_http_disconnect_and_send_raises_oserror() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        seen.append((await receive())["type"])
        try:
            await send({"type": "http.response.body", "body": b"more", "more_body": True})
        except OSError as exc:
            seen.append(type(exc).__name__)
            raise

    def leave_soon(conn: FakeConn) -> None:
        conn.loop.call_later(0.01, setattr, conn, "closing", True)

    conn, exchange, _ = serve(app, conn_setup=leave_soon)
    assert seen == ["http.disconnect", "ClientGone"]
    assert ("write", b"more") not in conn.calls and exchange.close


def test_a_streaming_app_waits_in_send_while_the_client_reads_slowly() -> None:
    order: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        order.append("send returned")
        await send({"type": "http.response.body", "body": b"b"})

    def paused(conn: FakeConn) -> None:
        conn.write_gate = threading.Event()  # the transport's buffer is full
        conn.loop.call_later(0.05, lambda: (order.append("drained"), conn.write_gate.set()))  # type: ignore[union-attr]

    conn, _, _ = serve(app, conn_setup=paused)
    assert order == ["drained", "send returned"]
    assert conn.calls[-1] == ("finish",)


def test_a_reload_ends_the_old_apps_streams_and_keeps_the_current_ones() -> None:
    server = ASGIServer(("127.0.0.1", 8000), lambda line: None)
    seen: dict[str, str] = {}

    async def sse(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # the request
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        seen[scope["path"]] = (await receive())["type"]  # waits for the client to go: an SSE stream never ends

    async def main() -> tuple[FakeConn, FakeConn, Exchange]:
        loop = asyncio.get_running_loop()
        old, current = ASGIApplication(sse, "old:app"), ASGIApplication(sse, "new:app")
        conns, exchanges, tasks = [], [], []
        for path, entry in (("/old", old), ("/current", current)):
            conn, exchange = FakeConn(loop), exchange_for(target=path)
            conn.begin(exchange)
            tasks.append(start_asgi(conn, exchange, entry, "", server, lambda: None))  # type: ignore[arg-type]
            conns.append(conn)
            exchanges.append(exchange)
        while len(server.streams) < 2:
            await asyncio.sleep(0)
        server.end_streams(current)
        await tasks[0]
        assert not tasks[1].done() and list(server.streams.values()) == [current]
        server.end_streams(None)
        await tasks[1]
        return conns[0], conns[1], exchanges[0]

    old_conn, _, old_exchange = asyncio.run(main())
    assert seen == {"/old": "http.disconnect", "/current": "http.disconnect"}
    assert old_conn.calls[-1] == ("finish",) and old_exchange.close  # the end goes out, then the connection closes
    assert not server.streams


def test_a_half_closed_client_is_a_disconnect_too() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        assert (await receive())["type"] == "http.disconnect"
        await hello(scope, receive, send)

    conn, _, _ = serve(app, conn_setup=lambda conn: setattr(conn, "eof", True))
    assert conn.calls[0][0] == "send"


def test_print_in_the_app_goes_to_its_request(capsys: pytest.CaptureFixture[str]) -> None:
    from devserver.debug import requestlogs

    async def app(scope: Any, receive: Any, send: Any) -> None:
        requestlogs.note("a line the app wrote")
        await hello(scope, receive, send)

    _, exchange, _ = serve(app)
    assert exchange.logs is not None and exchange.logs.snapshot() == ("a line the app wrote",)


# lifespan ---------------------------------------------------------------------

def lifespan_app(on_startup: Any = None, fail_message: str | None = None) -> Any:
    log: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        message = await receive()
        assert message["type"] == "lifespan.startup"
        if fail_message is not None:
            await send({"type": "lifespan.startup.failed", "message": fail_message})
            return
        if on_startup is not None:
            on_startup(scope)
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        log.append(message["type"])
        await send({"type": "lifespan.shutdown.complete"})

    app.log = log  # type: ignore[attr-defined]
    return app


def run_lifespan(app: Any, mode: str = "auto") -> tuple[Lifespan, ASGIApplication]:
    entry = ASGIApplication(app, "test:app")

    async def main() -> Lifespan:
        lifespan = Lifespan(entry, mode)
        await lifespan.startup()
        await lifespan.shutdown()
        return lifespan

    return asyncio.run(main()), entry


def test_startup_fills_the_state_and_shutdown_is_sent() -> None:
    app = lifespan_app(lambda scope: scope["state"].update(pool="ready"))
    lifespan, entry = run_lifespan(app)
    assert lifespan.failure is None and entry.state == {"pool": "ready"}
    assert app.log == ["lifespan.shutdown"]


def test_startup_failed_is_one_line() -> None:
    lifespan, _ = run_lifespan(lifespan_app(fail_message="Traceback...\nOSError: no database\n"))
    assert lifespan.failure == "OSError: no database"


def test_a_startup_that_raises_says_where() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise ConnectionError("redis unreachable")

    lifespan, _ = run_lifespan(app, "auto")
    assert lifespan.failure is not None and lifespan.failure.startswith("ConnectionError: redis unreachable (test_asgi.py:")


async def http_only(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError("Django can only handle ASGI/HTTP connections, not lifespan.")


def test_auto_serves_an_app_without_lifespan_support_and_on_calls_it_a_failure() -> None:
    assert run_lifespan(http_only, "auto")[0].failure is None
    assert "Django can only handle" in (run_lifespan(http_only, "on")[0].failure or "")


def test_off_never_calls_the_app() -> None:
    app = lifespan_app(lambda scope: pytest.fail("called"))
    assert run_lifespan(app, "off")[0].failure is None


def test_the_keeper_shuts_the_old_app_down_before_starting_the_new_one() -> None:
    order: list[str] = []

    def app_named(name: str) -> ASGIApplication:  # the same APP, before and after a reload
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            order.append(f"{name} up")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            order.append(f"{name} down")
            await send({"type": "lifespan.shutdown.complete"})
        return ASGIApplication(app, "main:app")

    async def main() -> None:
        keeper = LifespanKeeper("auto", lambda line: None)
        old, new = app_named("old"), app_named("new")
        await keeper.switch(old)
        assert keeper.ready(old) is not None and keeper.ready(new) is None
        first, second = await asyncio.gather(keeper.switch(new), keeper.switch(new))  # concurrent requests
        assert first is second and keeper.ready(new) is first
        other = ASGIApplication(http_only, "other:app")  # another app of the worker keeps its own lifespan
        await keeper.switch(other)
        assert keeper.ready(new) is first
        await keeper.close()

    asyncio.run(main())
    assert order == ["old up", "old down", "new up", "new down"]


# live reload in ASGI pages -------------------------------------------------------

def page_app(body: bytes, headers: list[tuple[bytes, bytes]], parts: int = 1) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        size = len(body) // parts + 1
        for n in range(parts):
            await send({"type": "http.response.body", "body": body[n * size:(n + 1) * size],
                        "more_body": n < parts - 1})
    return with_livereload_asgi(app)


HTML = [(b"content-type", b"text/html; charset=utf-8")]


def test_a_full_page_gets_the_script_and_its_new_length_even_sent_in_parts() -> None:
    page = b"<!doctype html><html><body>hi</body></html>"
    conn, _, _ = serve(page_app(page, HTML, parts=3))
    (kind, status, headers, body, _), _ = conn.calls
    assert kind == "send" and b'src="/__devserver__/livereload.js"' in body
    assert ("content-length", str(len(body))) in headers


@pytest.mark.parametrize(("body", "headers"), [
    (b"<p>a fragment</p>", HTML),
    (gzip.compress(b"<!doctype html><html></html>"), [*HTML, (b"content-encoding", b"gzip")]),
    (b"<!doctype html><html></html>", [(b"content-type", b"text/plain")]),
])
def test_fragments_compressed_and_other_bodies_pass_untouched(body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    conn, _, _ = serve(page_app(body, headers))
    assert conn.calls[0][3] == body


def test_a_streamed_page_with_no_length_passes_untouched_as_it_comes() -> None:
    page = b"<!doctype html><html><body>" + b"x" * 100 + b"</body></html>"
    conns: list[FakeConn] = []
    out_when_sent: list[int] = []  # body writes on the connection once each part's send returned

    async def app(scope: Any, receive: Any, send: Any) -> None:  # Starlette's StreamingResponse: no length
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        for part in (page[:50], page[50:]):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            out_when_sent.append(sum(call[0] in ("start", "write") for call in conns[0].calls))
        await send({"type": "http.response.body", "body": b""})

    conn, _, _ = serve(with_livereload_asgi(app), conn_setup=conns.append)
    assert out_when_sent == [1, 2]  # each part went out before the app sent the next: nothing held
    assert [call[0] for call in conn.calls] == ["start", "write", "write", "finish"]
    assert b"".join(call[-1] for call in conn.calls if call[0] in ("start", "write")) == page  # no script


def test_a_page_larger_than_the_limit_streams_through() -> None:
    from devserver.handlers.inject import LIMIT

    page = b"<!doctype html><html>" + b"x" * (LIMIT + 10) + b"</html>"
    conn, _, _ = serve(page_app(page, HTML, parts=4))
    sent = b"".join(call[-1] for call in conn.calls if call[0] in ("start", "write"))
    assert sent == page and conn.calls[0][0] == "start"


# detection and discovery ---------------------------------------------------------------

def test_asgi_apps_are_told_from_wsgi_ones() -> None:
    fastapi = pytest.importorskip("fastapi")
    flask = pytest.importorskip("flask")

    class Handler:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        return []

    assert is_asgi(fastapi.FastAPI()) and is_asgi(Handler()) and is_asgi(hello)
    assert not is_asgi(flask.Flask("x")) and not is_asgi(wsgi) and not is_asgi(Handler)


@pytest.mark.parametrize(("source", "name"), [
    ("from fastapi import FastAPI\napp = FastAPI()\n", "app"),
    ("import django\napplication = get_asgi_application()\n", "application"),
    ("api: object = make()\n", "api"),
    ("import fastapi\nserver = fastapi.FastAPI()\n", "server"),
    ("def application(environ, start_response):\n    return []\n", "application"),
    ("from flask import Flask\na = Flask('a')\nb = Flask('b')\n", None),  # two: name one
    ("print('a script')\n", None),
    ("app = (\n", None),  # does not compile: not an app to discover
])
def test_the_app_a_module_defines_is_read_from_its_source(tmp_path: Path, source: str, name: str | None) -> None:
    (tmp_path / "main.py").write_text(source)
    assert app_in(str(tmp_path / "main.py")) == name


def test_discovery_takes_the_candidates_in_fastapi_devs_order(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("app = FastAPI()\n")
    (tmp_path / "api.py").write_text("print('no app here')\n")
    found = discover(str(tmp_path))
    assert found is not None and (found.app, found.file) == ("app.main:app", "app/main.py")
    (tmp_path / "main.py").write_text("application = object()\n")
    found = discover(str(tmp_path))
    assert found is not None and found.app == "main:application"
    assert discover(str(tmp_path / "app" / "none")) is None

