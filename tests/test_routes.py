"""Routing alone: a request in, the typed route out (handlers/routes.py; no sockets, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devserver.handlers.routes import APP, INTERNAL, SERVER_OPTIONS, Refused, Route, Router, Script, SendFile
from devserver.handlers.static import StaticResponse
from devserver.http.hostcheck import HostPolicy
from devserver.http.parser import Head, Request, RequestParser

HOST = "127.0.0.1:8000"


def request(target: str, method: str = "GET", host: str = HOST) -> Request:
    """The request the parser makes of these bytes (the router sees nothing else)."""
    events = RequestParser().feed(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert isinstance(events[0], Head), events
    return events[0].request


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "page.html").write_text("<p>a page</p>")
    (tmp_path / "big.bin").write_bytes(b"x" * (512 * 1024))  # past the size kept in memory: sendfile
    return tmp_path


def router(root: Path, *, app: bool = False, internal: bool = True) -> Router:
    return Router(HostPolicy.for_bind("127.0.0.1", ()), str(root), app=app, internal=internal, html_transform=None)


def route(root: Path, target: str, *, method: str = "GET", host: str = HOST, app: bool = False,
          internal: bool = True) -> Route:
    return router(root, app=app, internal=internal).route(request(target, method, host))


def test_a_foreign_host_is_refused_before_anything_else(root: Path) -> None:
    for target, method in (("/page.html", "GET"), ("/hello.py", "GET"), ("*", "OPTIONS"),
                           ("/__devserver__/events", "GET"), ("/nothing", "GET")):
        refused = route(root, target, method=method, host="rebind.example:8000", app=True)
        assert isinstance(refused, Refused), (target, refused)
        assert refused.status == 403
        assert "'rebind.example'" in refused.message and "--allowed-host rebind.example" in refused.message


def test_options_asterisk_is_the_servers_own_answer(root: Path) -> None:
    assert route(root, "*", method="OPTIONS") is SERVER_OPTIONS
    assert route(root, "*", method="OPTIONS", app=True) is SERVER_OPTIONS  # not the APP's


def test_live_reload_endpoints_when_installed_else_a_path_like_any(root: Path) -> None:
    assert route(root, "/__devserver__/events") is INTERNAL
    assert route(root, "/__devserver__/livereload.js", app=True) is INTERNAL
    missing = route(root, "/__devserver__/events", internal=False)
    assert isinstance(missing, StaticResponse) and missing.status == 404
    assert route(root, "/__devserver__/events", internal=False, app=True) is APP


def test_a_module_of_dynamic_and_the_rest_of_its_path(root: Path) -> None:
    assert route(root, "/hello.py") == Script("hello", "/hello.py", "")
    assert route(root, "/hello.py/a/b?x=1") == Script("hello", "/hello.py", "/a/b")
    assert route(root, "/hello.py/", app=True) == Script("hello", "/hello.py", "/")  # before the APP
    for target in ("/hello.pyc", "/sub/hello.py", "/9lives.py", "/hello.py.bak"):  # no module name
        answer = route(root, target)
        assert isinstance(answer, StaticResponse) and answer.status == 404, target


def test_a_small_file_is_its_whole_answer(root: Path) -> None:
    answer = route(root, "/page.html")
    assert isinstance(answer, StaticResponse)
    assert answer.status == 200 and answer.body == b"<p>a page</p>" and answer.file is None
    head = route(root, "/page.html", method="HEAD")
    assert isinstance(head, StaticResponse) and head.status == 200 and head.body == b""


def test_a_large_file_is_sent_from_its_open_file(root: Path) -> None:
    answer = route(root, "/big.bin")
    assert isinstance(answer, SendFile)
    response = answer.response
    assert response.file is not None
    try:
        assert response.status == 200 and response.length == 512 * 1024 and response.offset == 0
        assert dict(response.headers)["Content-Length"] == str(512 * 1024)
    finally:
        response.file.close()


def test_the_app_answers_every_path_that_names_no_file(root: Path) -> None:
    assert route(root, "/", app=True) is APP  # no index.html
    assert route(root, "/users/7?x=1", app=True) is APP
    assert route(root, "/users/7", method="POST", app=True) is APP
    assert route(root, "/%ff", app=True) is APP  # no file can have that name: the APP says what it means
    files_win = route(root, "/page.html", app=True)
    assert isinstance(files_win, StaticResponse) and files_win.body == b"<p>a page</p>"


def test_without_an_app_what_names_no_file_is_a_files_error(root: Path) -> None:
    missing = route(root, "/users/7")
    assert isinstance(missing, StaticResponse) and missing.status == 404
    bad = route(root, "/%ff")
    assert isinstance(bad, StaticResponse) and bad.status == 400


def test_static_pages_get_the_routers_transform(root: Path) -> None:
    marked = Router(HostPolicy.for_bind("127.0.0.1", ()), str(root), app=False, internal=True,
                    html_transform=lambda html: html + b"<!-- marked -->")
    answer = marked.route(request("/page.html"))
    assert isinstance(answer, StaticResponse) and answer.body == b"<p>a page</p><!-- marked -->"
