"""http/chunks.py in memory: the size lines of a chunked body (RFC 9112 §7.1), fed in any pieces."""

from __future__ import annotations

import pytest

from devserver.http.chunks import MAX_LINE, ChunkChecker
from devserver.http.errors import ProtocolError

GOOD = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"A\r\n0123456789\r\n0\r\n\r\n",  # hex, either case
    b"a\r\n0123456789\r\n00\r\n\r\n",
    b"5;name\r\nhello\r\n0\r\n\r\n",  # chunk-ext without a value (RFC 9112 §7.1.1)
    b"5;name=token\r\nhello\r\n0;last=1\r\n\r\n",
    b'5;name="quoted \\" value"\r\nhello\r\n0\r\n\r\n',  # quoted-string with a quoted-pair
    b"5 ; a=b ;c\r\nhello\r\n0\r\n\r\n",  # BWS around ";" and "="
    b"5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",  # trailer fields (§7.1.2)
    b"3\r\n\r\n\r\r\n0\r\n\r\n",  # chunk data is not looked at, CRLF inside it included
]

BAD = [
    (b"5;name=\r\nhello\r\n0\r\n\r\n", "Malformed chunk size line"),  # an empty chunk-ext-val: llhttp lets it through
    (b"5;=v\r\nhello\r\n0\r\n\r\n", "Malformed chunk size line"),
    (b"5;na me=v\r\nhello\r\n0\r\n\r\n", "Malformed chunk size line"),
    (b'5;n="open\r\nhello\r\n0\r\n\r\n', "Malformed chunk size line"),
    (b"\r\nhello\r\n", "Malformed chunk size line"),  # no size
    (b"-5\r\nhello\r\n", "Malformed chunk size line"),
    (b"0x5\r\nhello\r\n", "Malformed chunk size line"),
]


def feed_in(checker: ChunkChecker, data: bytes, step: int) -> None:
    for start in range(0, len(data), step):
        checker.feed(data[start:start + step])


@pytest.mark.parametrize("body", GOOD)
@pytest.mark.parametrize("step", [1, 2, 3, 7, 1 << 16])  # byte by byte, CR and LF apart, all at once
def test_well_formed_bodies_pass_in_any_pieces(body: bytes, step: int) -> None:
    feed_in(ChunkChecker(), body, step)


@pytest.mark.parametrize(("body", "message"), BAD)
@pytest.mark.parametrize("step", [1, 5, 1 << 16])
def test_a_malformed_size_line_is_400(body: bytes, message: str, step: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        feed_in(ChunkChecker(), body, step)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_an_endless_size_line_is_refused_once_it_passes_the_limit() -> None:
    checker = ChunkChecker()
    checker.feed(b"5" * MAX_LINE)  # at the limit, still waiting for its CRLF
    with pytest.raises(ProtocolError) as caught:
        checker.feed(b";")
    assert (caught.value.status, caught.value.message) == (400, "Chunk size line too long")


def test_bytes_after_the_last_chunk_are_not_its_business() -> None:
    """The next pipelined request follows the body: once the trailers end the checker looks no further."""
    checker = ChunkChecker()
    checker.feed(b"0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    checker.feed(b"not a size line\r\n")


def test_only_size_lines_are_looked_at_the_data_and_its_crlf_are_llhttps() -> None:
    """The checker passes over size + 2 bytes: a wrong CRLF after the data is for llhttp to refuse."""
    checker = ChunkChecker()
    checker.feed(b"5\r\nhelloXX3\r\nabc\r\n")  # "XX" taken as the data's CRLF; "3" is the next size line
    with pytest.raises(ProtocolError):
        checker.feed(b"nothex\r\n")


def test_the_data_of_a_large_chunk_is_skipped_across_pieces() -> None:
    checker = ChunkChecker()
    checker.feed(b"10000\r\n")  # 64 KiB of data
    for _ in range(16):
        checker.feed(b";=;" * 1365 + b"x")  # would be a malformed line if it were read as one
    checker.feed(b"\r\n")
    with pytest.raises(ProtocolError):
        checker.feed(b"zz\r\n")  # the next size line is looked at again
