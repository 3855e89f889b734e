"""A third-party request corpus, checked at the protocol layer and against a live server.

The corpus is optional and not part of the repository: set DEVSERVER_CORPORA
to a folder holding ``gunicorn/manifest.json`` (``.ci/run`` does when one is
beside the checkout).  The manifest carries, per case, the raw bytes, the
answer an RFC 9112 origin server should give (``rfc``: valid, reject, either,
incomplete, mixed) with its ``status``, and for valid cases the expected parse
of every pipelined request.

At the protocol layer every case must give the same events however its bytes
are split.  Against the live server every valid request's method, path, query,
headers and body must reach an echo app exactly, and refusals must carry the
expected status.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from conftest import FIXTURE_APPS, LiveServer, read_all, read_responses
from test_http_parser import SPLITS

from devserver.http.parser import Body, End, Head, Limits, Rejected, RequestParser


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    rfc: str
    status: int
    expect: tuple[dict, ...]
    per_request: tuple[str, ...]
    trailer_guard: dict


def load_cases() -> list[Case]:
    folder = os.environ.get("DEVSERVER_CORPORA")
    if not folder:
        return []
    manifest = Path(folder) / "gunicorn" / "manifest.json"
    cases = json.loads(manifest.read_text())["cases"]
    return [
        Case(
            name=("gv_" if c["kind"] == "valid" else "gi_") + c["name"],
            raw=base64.b64decode(c["raw_b64"]),
            rfc=c["rfc"],
            status=c["status"],
            expect=tuple(c.get("expect") or ()),
            per_request=tuple(c.get("per_request") or ()),
            trailer_guard=c.get("trailer_guard") or {},
        )
        for c in cases
    ]


CASES = load_cases()
LIMITS = Limits()


def parsed(expect: dict) -> tuple:
    """An expected request in the normalized shape of test_http_parser.feed_all's heads."""
    headers = tuple((n.upper(), v) for n, v in expect["headers"] if "_" not in n)
    return (expect["method"], expect["path"], expect["query"], "{}.{}".format(*expect["version"]), headers,
            base64.b64decode(expect["body_b64"]))


def pieces(data: bytes, split: str) -> list[bytes]:
    size = {"whole": len(data) or 1, "bytewise": 1, "random": 7}[split]
    return [data[i : i + size] for i in range(0, len(data), size)]


def parse_case(data: bytes, split: str) -> tuple[list[tuple], int | None, bool]:
    """Complete requests shaped like parsed(), the refusal status if any, and whether the last message ended."""
    parser = RequestParser(LIMITS)
    requests: list[tuple] = []
    request, body, ended, refused = None, b"", True, None
    for piece in pieces(data, split):
        for event in parser.feed(piece):
            if isinstance(event, Head):
                request, body, ended = event.request, b"", False
            elif isinstance(event, Body):
                body += event.data
            elif isinstance(event, End):
                assert request is not None
                headers = tuple((n.upper(), v) for n, v in request.headers if "_" not in n)
                requests.append((request.method, request.path, request.query, request.version, headers, body))
                ended = True
            elif isinstance(event, Rejected):
                refused = event.error.status
    # Whether a refused message's head came out first depends on the split; its answer does not.
    return requests, refused, ended or refused is not None


@pytest.mark.skipif(not CASES, reason="no corpus: set DEVSERVER_CORPORA")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_at_the_protocol_layer(case: Case) -> None:
    results = [parse_case(case.raw, split) for split in SPLITS]
    assert results[0] == results[1] == results[2], "the outcome depends on how the bytes are split"
    got, refused, ended = results[0]
    want = [parsed(e) for e in case.expect]
    if case.rfc == "valid":
        assert refused is None and got == want
    elif case.rfc == "reject":
        assert refused == case.status
    elif case.rfc == "either":
        assert refused == case.status or (refused is None and got == want), (refused, got)
    elif case.rfc == "incomplete":
        assert refused is None and not (ended and got), (refused, got)
    elif case.rfc == "mixed":
        valid = case.per_request.index("reject")
        assert got == want[:valid] and refused == case.status
    else:
        pytest.fail(f"unknown expectation {case.rfc!r}")


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory):
    """One server whose APP echoes the environ; an empty root so that no file answers first."""
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "html_page").mkdir()
    (folder / "dynamic").mkdir()
    (folder / "dynamic" / "corpus_echo.py").write_text((FIXTURE_APPS / "corpus_echo.py").read_text())
    server = LiveServer(["corpus_echo:application", "--workers", "1", "--allowed-host", "*",
                         "--header-timeout", "1"], folder).start()
    yield server
    server.stop()


def expected_environ(expect: dict) -> dict[str, str]:
    """The CGI keys a request's headers must become (PEP 3333); names with '_' never map."""
    environ: dict[str, str] = {}
    for name, value in expect["headers"]:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def check_echo(expect: dict, status: int, body: bytes, guard: dict, headers: dict[str, str] | None = None) -> None:
    assert status == 200, body[:300]
    if expect["path"] == "*":
        assert headers is not None and "GET" in headers["allow"]  # OPTIONS * is answered by the server itself
        return
    echo = json.loads(body)
    assert echo["method"] == expect["method"]
    assert echo["path_info"] == unquote_to_bytes(expect["path"]).decode("latin-1")
    assert echo["query"] == expect["query"]
    assert echo["body"].encode("latin-1") == base64.b64decode(expect["body_b64"])
    environ = echo["environ"]
    sent = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k in ("CONTENT_TYPE", "CONTENT_LENGTH")}
    want = expected_environ(expect)
    if "CONTENT_LENGTH" not in want and "CONTENT_LENGTH" in sent:
        # A chunked body was read whole before the app ran: its length is told (PEP 3333 wsgi.input).
        assert sent.pop("CONTENT_LENGTH") == str(len(echo["body"].encode("latin-1")))
    assert sent == want
    for key, value in guard.items():
        assert environ.get(key) != value, f"a trailer field reached the environ as {key}"


def exchange(server: LiveServer, data: bytes, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        return read_responses(sock, count)


@pytest.mark.skipif(not CASES, reason="no corpus: set DEVSERVER_CORPORA")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_against_a_live_server(case: Case, echo_server: LiveServer) -> None:
    if case.rfc == "incomplete":
        with socket.create_connection(("127.0.0.1", echo_server.port), timeout=10) as sock:
            sock.sendall(case.raw)
            answer = read_all(sock)  # the server times the message out (1 s here) and closes
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        return
    if case.rfc == "valid":
        results = exchange(echo_server, case.raw, len(case.expect))
        assert len(results) == len(case.expect)
        for expect, (status, headers, body) in zip(case.expect, results):
            check_echo(expect, status, body, case.trailer_guard, headers)
        return
    if case.rfc == "either":
        [(status, headers, body)] = exchange(echo_server, case.raw, 1)
        if status == 200:
            check_echo(case.expect[0], status, body, case.trailer_guard)
        else:
            assert status == case.status and headers.get("connection") == "close"
        return
    valid_before = case.per_request.index("reject") if case.rfc == "mixed" else 0
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=10) as sock:
        sock.sendall(case.raw)
        results = split_responses(read_all(sock))  # a refusal closes the connection
    for expect, (status, _, body) in zip(case.expect, results[:valid_before]):
        check_echo(expect, status, body, case.trailer_guard)
    assert len(results) == valid_before + 1, results
    status, headers, body = results[-1]
    assert status == case.status, body[:300]
    assert headers.get("connection") == "close"


def split_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Responses framed by Content-Length, as this server frames its own and the echo app's."""
    results = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {n.lower(): v.strip() for n, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        results.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return results
