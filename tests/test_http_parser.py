"""The protocol layer alone: bytes in, events out (no sockets).

Every case is fed whole, byte by byte and in random chunks; the events must
be the same however the bytes arrive.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from devserver.http.parser import LINE_KEPT, Body, End, Head, Limits, Rejected, RequestParser, chunk, response_head

OWN_CORPUS = Path(__file__).resolve().parent / "requests"


DEFAULT_LIMITS = Limits()


def feed_all(data: bytes, split: str, limits: Limits = DEFAULT_LIMITS) -> list:
    parser = RequestParser(limits)
    events = []
    if split == "whole":
        pieces = [data]
    elif split == "bytewise":
        pieces = [data[i : i + 1] for i in range(len(data))]
    else:
        rng = random.Random(len(data))
        pieces, i = [], 0
        while i < len(data):
            n = rng.randint(1, 17)
            pieces.append(data[i : i + n])
            i += n
    for piece in pieces:
        events.extend(parser.feed(piece))
    return normalize(events)


def normalize(events: list) -> list:
    """Merge adjacent Body events (chunking of the input may split them)."""
    out: list = []
    for event in events:
        if isinstance(event, Head):
            r = event.request
            out.append(("head", r.method, r.target, r.version, tuple(r.headers), r.keep_alive, r.chunked, r.content_length))
        elif isinstance(event, Body):
            if out and out[-1][0] == "body":
                out[-1] = ("body", out[-1][1] + event.data)
            else:
                out.append(("body", event.data))
        elif isinstance(event, End):
            out.append(("end",))
        elif isinstance(event, Rejected):
            out.append(("rejected", event.error.status))
    return out


SPLITS = ["whole", "bytewise", "random"]

GOOD = {
    "simple get": (b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\n\r\n",
                   [("head", "GET", "/a/b?x=1&y=2", "1.1", (("Host", "h"),), True, False, None), ("end",)]),
    "http/1.0 closes by default": (b"GET / HTTP/1.0\r\n\r\n",
                                   [("head", "GET", "/", "1.0", (), False, False, None), ("end",)]),
    "http/1.0 keep-alive": (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                            [("head", "GET", "/", "1.0", (("Connection", "keep-alive"),), True, False, None), ("end",)]),
    "connection close": (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                         [("head", "GET", "/", "1.1", (("Host", "h"), ("Connection", "close")), False, False, None), ("end",)]),
    "content-length body": (b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
                            [("head", "POST", "/p", "1.1", (("Host", "h"), ("Content-Length", "5")), True, False, 5),
                             ("body", b"hello"), ("end",)]),
    "chunked body with extension": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        [("head", "POST", "/", "1.1", (("Host", "h"), ("Transfer-Encoding", "chunked")), True, True, None),
         ("body", b"hello world"), ("end",)]),
    "pipelined": (b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
                  [("head", "GET", "/1", "1.1", (("Host", "h"),), True, False, None), ("end",),
                   ("head", "GET", "/2", "1.1", (("Host", "h"),), True, False, None), ("end",)]),
    "quoted chunk extensions": (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d e\"\r\nhello\r\n0\r\n\r\n",
        [("head", "POST", "/", "1.1", (("Host", "h"), ("Transfer-Encoding", "chunked")), True, True, None),
         ("body", b"hello"), ("end",)]),
    "latin-1 header value": (b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\r\n\r\n",
                             [("head", "GET", "/", "1.1", (("Host", "h"), ("X-Name", "caf\xe9")), True, False, None), ("end",)]),
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", list(GOOD))
def test_good_requests(name: str, split: str) -> None:
    data, expected = GOOD[name]
    assert feed_all(data, split) == expected


BAD = {
    "no host on 1.1": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "content-length and transfer-encoding": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "transfer-encoding then content-length": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    "differing duplicate content-length": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    "negative content-length": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    "bad chunk size": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    "bare LF request line": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "bare LF in headers": (b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400),
    "NUL in header": (b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400),
    "NUL in target": (b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "space before colon": (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    "garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    "unknown coding": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "unknown coding before chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    # RFC 9112 §6.3: chunked not final in a request → 400, whatever the other coding.
    "chunked not last": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    "unknown method": (b"FROB / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    "http/2.0": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    "http/1.2": (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    "http/3.0": (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
    "request line too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    "too many fields": (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
    "header block too large": (b"GET / HTTP/1.1\r\nHost: a\r\n" + (b"X-A: " + b"b" * 8000 + b"\r\n") * 9 + b"\r\n", 431),
    "unterminated huge header": (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"b" * 80_000, 431),
    "body too large (declared)": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", 413),
    "body too large (chunked)": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + b"a" * 2048 + b"\r\n0\r\n\r\n", 413),
    "empty chunk extension value": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n20;invalid=\r\nhello world\r\n", 400),
    "CONNECT": (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
    "asterisk for GET": (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "userinfo in Host": (b"GET / HTTP/1.1\r\nHost: u:p@a\r\n\r\n", 400),
    "relative target": (b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "unknown method without Host": (b"FROB / HTTP/1.1\r\n\r\n", 400),
    "unsupported expectation": (b"POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na", 417),
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", list(BAD))
def test_bad_requests_are_rejected_with_status(name: str, split: str) -> None:
    data, status = BAD[name]
    events = feed_all(data, split, Limits(max_body=1024))
    assert events[-1] == ("rejected", status), events
    assert not any(e[0] == "end" for e in events), "a rejected request must never be dispatched"


def rejected_line(data: bytes, split: str, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The raw line the Rejected event carries, fed as ``split`` says."""
    parser = RequestParser(limits)
    step = 1 if split == "bytewise" else (7 if split == "random" else len(data))
    events = [e for i in range(0, len(data), step) for e in parser.feed(data[i : i + step])]
    [rejected] = [e for e in events if isinstance(e, Rejected)]
    return rejected.line


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", list(BAD))
def test_a_refusal_carries_the_request_line_as_received(name: str, split: str) -> None:
    """What the log shows of a refused request: its own first line, whatever llhttp was fed (a stand-in method).

    Bytes after the refusal are never read: fed in pieces, the line is what
    had arrived when the request was refused.
    """
    data, _ = BAD[name]
    expected = data.split(b"\n", 1)[0].removesuffix(b"\r")[:LINE_KEPT]
    line = rejected_line(data, split, Limits(max_body=1024))
    assert line == expected if split == "whole" else (line and expected.startswith(line))


@pytest.mark.parametrize("split", SPLITS)
def test_a_refused_pipelined_request_shows_its_own_line(split: str) -> None:
    data = (b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
            b"FROB /second HTTP/1.1\r\nHost: a\r\n\r\n")
    assert rejected_line(data, split) == b"FROB /second HTTP/1.1"
    data = b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGE\x01T /x HTTP/1.1\r\n\r\n"
    assert b"GE\x01T /x HTTP/1.1".startswith(rejected_line(data, split)) and rejected_line(data, split).startswith(b"GE")


def test_a_bad_chunk_extension_after_a_good_pipelined_request() -> None:
    data = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=\r\nabc\r\n0\r\n\r\n")
    for split in SPLITS:
        events = feed_all(data, split)
        assert events[:3] == [events[0], ("body", b"hello"), ("end",)] and events[-1] == ("rejected", 400)
        assert events.count(("end",)) == 1


def test_requests_before_an_error_are_kept_and_nothing_after() -> None:
    parser = RequestParser()
    events = parser.feed(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/9.9\r\nHost: a\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n")
    kinds = normalize(events)
    assert kinds[0][2] == "/ok" and kinds[1] == ("end",)
    assert kinds[-1][0] == "rejected"
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == []


def test_expect_continue_and_upgrade_flags() -> None:
    parser = RequestParser()
    [head] = [e for e in parser.feed(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n") if isinstance(e, Head)]
    assert head.request.expect_continue
    parser = RequestParser()
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nrest")
    assert isinstance(events[-1], End) and parser.upgraded


def test_the_version_is_one_string_for_every_request() -> None:
    """Requests' versions are one object per version: a batch of events pickles it once, not once per request."""
    heads = [e.request for e in RequestParser().feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 2) if isinstance(e, Head)]
    older = [e.request for e in RequestParser().feed(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n") if isinstance(e, Head)]
    assert [r.version for r in heads + older] == ["1.1", "1.1", "1.0"]
    assert heads[0].version is heads[1].version


def test_in_head_tracks_partial_heads() -> None:
    parser = RequestParser()
    assert not parser.in_head
    parser.feed(b"GET / HT")
    assert parser.in_head
    parser.feed(b"TP/1.1\r\nHost: a\r\n\r\n")
    assert not parser.in_head


def test_response_head_framing() -> None:
    head = response_head(404, [("Content-Length", "3")], close=True)
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"\r\nDate: " in head and b"\r\nServer: devserver/" in head
    assert head.endswith(b"Connection: close\r\n\r\n")
    assert response_head(200, [], version="1.0").startswith(b"HTTP/1.0 200 OK\r\n")
    assert chunk(b"hello") == b"5\r\nhello\r\n"


def corpus_files() -> list[Path]:
    return sorted(OWN_CORPUS.glob("*.http"))


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_requests_parse_the_same_in_any_chunking(path: Path) -> None:
    """Each corpus file gives the same events (or the same rejection) however it is split.

    Each file carries its expected outcome in the name (third-party corpora,
    with their manifests, are checked by test_http_corpus.py):
    ``*_valid.http`` must parse to at least one complete request;
    ``*_NNN.http`` must be rejected with status NNN.
    """
    data = path.read_bytes().replace(b"\\r\\n", b"\r\n")
    results = [feed_all(data, split) for split in SPLITS]
    assert results[0] == results[1] == results[2]
    stem = path.stem
    if stem.endswith("_valid"):
        assert ("end",) in results[0] and results[0][-1][0] != "rejected"
    elif stem[-3:].isdigit() and stem[-4] == "_":
        assert results[0][-1] == ("rejected", int(stem[-3:]))
