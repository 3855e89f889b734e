"""Response framing in memory (writer.py): handler bytes in, wire bytes and the connection's fate out."""

from __future__ import annotations

import h11
import pytest

from devserver.http.framing import BodyWriter, Delimit, framing_of


def respond(pieces: list[bytes], headers: list[tuple[str, str]], *, method: str = "GET", version: str = "1.1",
            close: bool = False) -> tuple[bytes, BodyWriter]:
    """One response as a handler streams it: the wire bytes and the writer that framed them."""
    writer = BodyWriter(framing_of(200, headers, method=method, version=version, close=close))
    wire = writer.framing.head + b"".join(writer.data(piece) for piece in pieces) + writer.end()
    return wire, writer


def read_as_client(wire: bytes, requests: int) -> list[tuple[int, bytes]]:
    """The responses an independent client (h11) reads from ``wire``, after sending ``requests`` GETs."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(wire)
    answers = []
    for _ in range(requests):
        client.send(h11.Request(method="GET", target="/", headers=[("Host", "localhost")]))
        client.send(h11.EndOfMessage())
        status, body = 0, b""
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"the response stream broke off at {event!r}")
        answers.append((status, body))
        client.start_next_cycle()
    return answers


@pytest.mark.parametrize("pieces", [[b"1234567890"], [b"12345", b"67890"], [b"123", b"4567", b"890"], [b"12345", b"", b"6"]])
def test_a_body_longer_than_its_content_length_is_cut_and_the_connection_kept(pieces: list[bytes]) -> None:
    wire, writer = respond(pieces, [("Content-Length", "5")])
    assert wire.endswith(b"\r\n\r\n12345")
    assert not writer.must_close  # the message sent is whole at its declared length (RFC 9112 §6.3)
    assert writer.overrun == sum(map(len, pieces)) - 5
    assert writer.mismatch() == f"The response declared Content-Length 5 but offered {5 + writer.overrun} bytes; cut at 5"
    # What follows on the same connection is read as the next response, not as the surplus.
    second, _ = respond([b"next"], [("Content-Length", "4")])
    assert read_as_client(wire + second, 2) == [(200, b"12345"), (200, b"next")]


def test_a_body_shorter_than_its_content_length_closes_the_connection() -> None:
    wire, writer = respond([b"12345"], [("Content-Length", "10")])
    assert wire.endswith(b"\r\n\r\n12345") and writer.short == 5
    assert writer.must_close  # an incomplete message (RFC 9112 §8): only the close can tell the client
    assert writer.mismatch() == "The response declared Content-Length 10 but ended after 5 bytes; the connection closed"


def test_http10_keep_alive_survives_a_cut_body() -> None:
    wire, writer = respond([b"abcdefghi"], [("Content-Length", "8")], version="1.0")
    assert wire.startswith(b"HTTP/1.0 200 ") and wire.endswith(b"\r\n\r\nabcdefgh")
    assert not writer.must_close


def test_sendfile_allowance_stops_at_the_declared_length_and_keeps_the_connection() -> None:
    writer = BodyWriter(framing_of(200, [("Content-Length", "1")], method="GET", version="1.1", close=False, body_length=5000))
    assert writer.allowance(5000) == 1
    assert (writer.overrun, writer.short, writer.must_close) == (4999, 0, False)
    writer = BodyWriter(framing_of(200, [("Content-Length", "5010")], method="GET", version="1.1", close=False, body_length=5000))
    assert writer.allowance(5000) == 5000 and writer.short == 10 and writer.must_close


def test_exact_chunked_and_bodiless_responses_need_no_cut() -> None:
    wire, writer = respond([b"ab", b"c"], [("Content-Length", "3")])
    assert wire.endswith(b"\r\n\r\nabc") and writer.mismatch() is None and not writer.must_close
    wire, writer = respond([b"ab", b"", b"c"], [])
    assert writer.framing.delimit is Delimit.CHUNKED and wire.endswith(b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")
    wire, writer = respond([b"abcdef"], [("Content-Length", "3")], method="HEAD")
    assert wire.endswith(b"Content-Length: 3\r\n\r\n") and writer.mismatch() is None and not writer.must_close


def test_take_is_the_body_on_the_wire() -> None:
    """What the dashboard records of a cut body is what was sent (take), not what the app offered."""
    writer = BodyWriter(framing_of(200, [("Content-Length", "4")], method="GET", version="1.1", close=False))
    assert [writer.take(piece) for piece in (b"ab", b"cdef", b"gh")] == [b"ab", b"cd", b""]
    chunked = BodyWriter(framing_of(200, [], method="GET", version="1.1", close=False))
    assert chunked.wire(chunked.take(b"xyz")) == b"3\r\nxyz\r\n"
