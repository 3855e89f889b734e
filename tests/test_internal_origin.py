"""The server's own endpoints (/__devserver__/) answer pages of this server only: a foreign Origin gets 403."""

from __future__ import annotations

import http.client

import pytest
from conftest import LiveServer

from devserver.handlers.livereload import SCRIPT_URL, same_origin
from devserver.http.parser import Request


def get(server: LiveServer, path: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_foreign_origin_is_refused_and_our_own_served(server: LiveServer) -> None:
    own = f"127.0.0.1:{server.port}"
    assert get(server, SCRIPT_URL, {"Origin": "https://evil.example"}) == 403
    assert get(server, SCRIPT_URL, {"Origin": "null"}) == 403  # a sandboxed frame or a file: page
    assert get(server, SCRIPT_URL, {"Origin": f"http://{own}"}) == 200
    assert get(server, SCRIPT_URL, {}) == 200  # a same-origin GET sends no Origin


@pytest.mark.parametrize(("origin", "allowed"), [
    (None, True), ("http://localhost:8000", True), ("http://LOCALHOST:8000", True),
    ("http://localhost:8001", False), ("http://localhost", False), ("https://evil.example", False), ("null", False),
])
def test_same_origin(origin: str | None, allowed: bool) -> None:
    headers = [("Host", "localhost:8000")] + ([("Origin", origin)] if origin is not None else [])
    request = Request("GET", SCRIPT_URL, "1.1", headers, True, host="localhost:8000")
    assert same_origin(request) is allowed
