"""Request-target forms, Host, methods and the DNS-rebinding check, against a live server (issue 9)."""

from __future__ import annotations

import json
import random

import pytest
from conftest import http_exchange, raw

from devserver.http.parser import RequestParser


def echo(server, request: bytes) -> tuple[int, dict]:
    with server.connect() as sock:
        [(status, _, body)] = http_exchange(sock, request)
    return status, (json.loads(body) if status == 200 else {"body": body.decode("latin-1")})


@pytest.fixture
def app_server(server_factory):
    """The echo fixture served as APP, so every path reaches it."""
    return server_factory("echo:application", "--workers", "1")


def test_absolute_form_is_served_with_path_query_and_host_from_the_target(app_server, server) -> None:
    status, body = echo(app_server, b"GET http://localhost:9/a/b?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 200
    assert (body["path_info"], body["query"]) == ("/a/b", "x=1")
    assert body["headers"]["HTTP_HOST"] == "localhost:9"  # the authority replaces Host (RFC 9112 §3.2.2)
    data = raw(server, b"GET http://localhost/index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and b"fixture index" in data


def test_connect_is_refused_without_calling_the_app(app_server) -> None:
    data = raw(app_server, b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 501 ") and b"Connection: close" in data
    assert not any("CONNECT" in line and " 200 " in line for line in app_server.lines)


@pytest.mark.parametrize("method", [b"GET", b"POST", b"DELETE"])
def test_asterisk_form_only_for_options(app_server, method: bytes) -> None:
    data = raw(app_server, method + b" * HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 ")


def test_options_asterisk_is_answered_by_the_server(app_server) -> None:
    data = raw(app_server, b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and b"\r\nAllow: GET, HEAD, POST" in data


def test_fragment_never_reaches_the_query(server) -> None:
    status, body = echo(server, b"GET /echo.py/p?a=1#frag HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 200 and body["query"] == "a=1" and body["path_info"] == "/p"


@pytest.mark.parametrize("host", [b"user:pw@localhost", b"local host", b"localhost/x", b"a\"b"])
def test_invalid_host_values_get_400(server, host: bytes) -> None:
    data = raw(server, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 ")


def test_underscore_fields_never_set_the_body_length(server) -> None:
    request = (b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent_Length: 50\r\n"
               b"Content_Type: text/evil\r\nX_Auth_User: admin\r\n\r\nhello")
    status, body = echo(server, request)
    assert status == 200 and body["content_length"] == "5" and body["body"] == "hello"
    assert body["content_type"] == "" and "HTTP_X_AUTH_USER" not in body["headers"]


def test_empty_chunk_extension_value_is_refused_at_once(server) -> None:
    request = (b"POST /echo.py HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;invalid=\r\nhello\r\n0\r\n\r\n")
    data = raw(server, request, timeout=3, half_close=True)  # a hang would reach the 10 s header timeout
    assert data.startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize("seed", range(20))
def test_invalid_method_status_does_not_depend_on_the_tcp_split(seed: int) -> None:
    rng = random.Random(seed)
    for data, status in ((b"FROB /x HTTP/1.1\r\nHost: a\r\n\r\n", 501), (b"GE\x01T /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
                         (b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPURGEX /2 HTTP/1.1\r\nHost: a\r\n\r\n", 501),
                         (b"FROB /x HTTP/1.1\r\n\r\n", 400)):
        parser = RequestParser()
        events, i = [], 0
        while i < len(data):
            n = rng.randint(1, 6)
            events += parser.feed(data[i : i + n])
            i += n
        assert events[-1].error.status == status, (data, events[-1])


def test_foreign_host_names_are_refused_against_dns_rebinding(server) -> None:
    data = raw(server, b"GET /index.html HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 403 ") and b"--allowed-host attacker.example" in data
    assert b"fixture index" not in data
    for host in (b"localhost:8899", b"127.0.0.1", b"[::1]:1234", b"app.localhost"):
        data = raw(server, b"GET /index.html HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 200 "), host
    data = raw(server, b"GET /index.html HTTP/1.0\r\n\r\n")  # no Host at all: not a browser
    assert data.startswith(b"HTTP/1.0 200 ")


def test_allowed_host_option(server_factory) -> None:
    server = server_factory("--workers", "1", "--allowed-host", "myapp.test")
    ok = raw(server, b"GET /index.html HTTP/1.1\r\nHost: myapp.test:80\r\nConnection: close\r\n\r\n")
    refused = raw(server, b"GET /index.html HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ") and refused.startswith(b"HTTP/1.1 403 ")
    anything = server_factory("--workers", "1", "--allowed-host", "*")
    assert raw(anything, b"GET /index.html HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n").startswith(
        b"HTTP/1.1 200 ")


def test_refused_requests_are_logged_with_the_line_they_sent(app_server) -> None:
    """What is known of a request refused before it was parsed, its first line, is on its log line (issue 20)."""
    raw(app_server, b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n")
    line = app_server.wait_for(r" 501 ")
    assert ' - "CONNECT localhost:443 HTTP/1.1" 501 ' in line
    # Control characters arrive escaped; a long line is shortened.
    raw(app_server, b"GET /\x1b[2J\x07 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    line = app_server.wait_for(r"GET /\\x1b")
    assert ' - "GET /\\x1b[2J\\x07 HTTP/1.1" 400 ' in line and "\x1b" not in line
    raw(app_server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # TLS spoken to plain HTTP: bytes past ASCII too
    line = app_server.wait_for(r"x16")
    assert r' - "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" 400 ' in line
    raw(app_server, b"GET /" + b"a" * 500 + b" HTTP/1.1\r\nFoo\r\n\r\n")
    line = app_server.wait_for(r"GET /aaaa")
    assert ' - "GET /' + "a" * 94 + '…" 400 ' in line
