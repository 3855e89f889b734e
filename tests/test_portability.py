"""dynamic/site.py answers the same on every WSGI server.

Each server in ``SERVERS`` runs the site's app on 127.0.0.1, port 0; every
case is sent to all of them with http.client and the answers must agree
(status, body, and the headers an app decides). To add a server, add a
context manager that serves a WSGI app and yields its (host, port).
"""

from __future__ import annotations

import http.client
import importlib.util
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import waitress
from waitress import wasyncore

SITE = Path(__file__).resolve().parent.parent / "dynamic" / "site.py"
Address = tuple[str, int]
WSGIApp = Callable[..., Any]
# The headers an app chooses; servers may add their own (Date, Server, Connection).
COMPARED = ("Content-Type", "Content-Length", "Location", "Set-Cookie", "Allow")


@contextmanager
def waitress_server(app: WSGIApp) -> Iterator[Address]:
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.effective_port
    finally:
        # Close every socket from the loop's own thread (a trigger thunk runs
        # between selects): closing them from here races its select() (EBADF).
        # An empty socket map ends waitress's loop.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(5)
        server.task_dispatcher.shutdown()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    # A thread per connection, so an idle client cannot hold up shutdown().
    daemon_threads = True


@contextmanager
def wsgiref_server(app: WSGIApp) -> Iterator[Address]:
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgiref", daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def devserver_server(app: WSGIApp) -> Iterator[Address]:
    """The real devserver command serving ``site:app`` (the app object itself is not used).

    Its --root is an empty folder: files win over the app, and the repo's
    index.html would otherwise answer "/".
    """
    import tempfile

    from conftest import LiveServer

    with tempfile.TemporaryDirectory() as empty:
        server = LiveServer(["site:app", "--workers", "1", "--no-livereload", "--root", empty,
                             "--dynamic", str(SITE.parent)], SITE.parent.parent).start()
        try:
            yield "127.0.0.1", server.port
        finally:
            server.stop()


# The first server is the reference the others are compared with.
SERVERS: dict[str, Callable[[WSGIApp], AbstractContextManager[Address]]] = {
    "waitress": waitress_server,
    "wsgiref": wsgiref_server,
    "devserver": devserver_server,
}


def load_site_app() -> WSGIApp:
    spec = importlib.util.spec_from_file_location("_portability_site", SITE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Address]]:
    """Every server in SERVERS, each serving the site, started once for the module."""
    app = load_site_app()
    with ExitStack() as stack:
        yield {name: stack.enter_context(start(app)) for name, start in SERVERS.items()}


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest, servers: dict[str, Address]) -> Address:
    """One server at a time, for checks that need no comparison."""
    return servers[request.param]


@dataclass(frozen=True)
class Case:
    method: str
    target: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    same_body: bool = True  # False where the body legitimately changes (the time)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
MULTIPART_BODY = (b'--XyZ\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda\r\n'
                  b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n\r\n\x00\xff\r\n--XyZ--\r\n')
CASES = [
    Case("GET", "/", 200),
    Case("GET", "/hello/w%C3%B6rld", 200),
    Case("GET", "/items/2", 200),
    Case("HEAD", "/items/2", 200),
    Case("GET", "/items/two", 404),
    Case("GET", "/items/99", 404),
    Case("GET", "/nowhere", 404),
    Case("DELETE", "/items/2", 405),
    Case("GET", "/form?sent=1", 200, headers={"Cookie": "visitor=Ada"}),
    Case("POST", "/form", 303, b"name=Ada+L%C3%B6v&message=hi", FORM),
    Case("POST", "/form", 303, MULTIPART_BODY, {"Content-Type": "multipart/form-data; boundary=XyZ"}),
    Case("POST", "/form", 400, b"name=", FORM),
    Case("POST", "/api/echo?a=1&a=2", 200, b'{"x": [1, "\xc3\xa9"]}', JSON),
    Case("POST", "/api/echo", 400, b"{broken", JSON),
    Case("GET", "/api/time", 200, same_body=False),
]


def fetch(address: Address, case: Case) -> Answer:
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        conn.request(case.method, case.target, body=case.body or None, headers=case.headers)
        response = conn.getresponse()
        body = response.read()
        headers: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            headers.setdefault(name.title(), []).append(value)
        return Answer(response.status, headers, body)
    finally:
        conn.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.target} {c.status}")
def test_every_server_answers_the_same(servers: dict[str, Address], case: Case) -> None:
    answers = {name: fetch(address, case) for name, address in servers.items()}
    reference_name, reference = next(iter(answers.items()))
    assert reference.status == case.status
    for name, answer in answers.items():
        where = f"{name} vs {reference_name}"
        assert answer.status == reference.status, where
        if case.same_body:
            assert answer.body == reference.body, where
        for header in COMPARED if case.same_body else ("Content-Type",):
            assert answer.headers.get(header) == reference.headers.get(header), f"{where}: {header}"


def test_head_keeps_content_length_without_a_body(server: Address) -> None:
    get = fetch(server, Case("GET", "/items/2", 200))
    head = fetch(server, Case("HEAD", "/items/2", 200))
    assert head.body == b""
    assert head.headers["Content-Length"] == [str(len(get.body))]


def test_redirect_and_cookie_round_trip(server: Address) -> None:
    posted = fetch(server, Case("POST", "/form", 303, b"name=Ada", FORM))
    assert posted.headers["Location"] == ["/form?sent=1"]
    cookie = posted.headers["Set-Cookie"][0].split(";")[0]
    page = fetch(server, Case("GET", "/form?sent=1", 200, headers={"Cookie": cookie}))
    assert b"Welcome back, Ada." in page.body
