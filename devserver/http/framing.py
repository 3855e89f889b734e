"""Response framing, decided once per response and enforced for every byte.

The request side turns bytes into events (parser.py); this is its mirror for
responses, with no sockets: ``framing_of()`` reads status, method, version and
the handler's headers and decides how the body is delimited (RFC 9112 §6.3),
and a ``BodyWriter`` then turns the handler's body bytes into wire bytes that
always match that decision.  A handler that sends more than it declared is
cut at the declared length: the message on the wire is whole and exactly as
long as announced (RFC 9112 §6.3), so the connection carries on, as
waitress's does.  One that sends less leaves an incomplete message (§8) that
only the end of the connection can signal, so the connection is closed.
Either way the mismatch is reported with the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from devserver.http.parser import LAST_CHUNK, chunk, date_fields, head_of_fields, header_fields, response_head
from devserver.kit.frozen import record


class Delimit(Enum):
    NONE = "none"  # HEAD, 1xx, 204, 304: no body whatever the headers say
    LENGTH = "length"  # Content-Length
    CHUNKED = "chunked"  # Transfer-Encoding: chunked (HTTP/1.1 only)
    CLOSE = "close"  # the end of the connection (HTTP/1.0 without a length)


# The members as module globals: on Python 3.11 each attribute of an Enum class is looked up through
# EnumType.__getattr__ (about a thousand instructions), and these are read several times per response.
_NONE, _LENGTH, _CHUNKED, _CLOSE = Delimit.NONE, Delimit.LENGTH, Delimit.CHUNKED, Delimit.CLOSE


@dataclass(slots=True)  # not frozen (never changed once made): a frozen __init__ costs twice a plain one, per response
class Framing:
    delimit: Delimit
    length: int | None  # bytes of body announced (LENGTH); None otherwise
    close: bool  # the connection ends after this response
    head: bytes  # status line and header block, ready to send


@record
class HeaderBlock:
    """A handler's header fields as framing reads them, worked out once for fields sent again and again.

    An ASGI app sends the same few fields on every response (handlers/asgi.py
    keeps one block per distinct list): what framing reads of them is read
    here, once, and their wire bytes are made once.
    """

    fields: tuple[tuple[str, str], ...]  # less Transfer-Encoding and Connection (the server writes its own)
    declared: int | None  # the first Content-Length's value (None if absent or not a number)
    close: bool  # a Connection field said close
    wire: bytes  # ``fields`` as they go out (parser.header_fields)


Headers = list[tuple[str, str]] | HeaderBlock  # what a handler gives as a response's header fields


def header_block(headers: list[tuple[str, str]]) -> HeaderBlock:
    """``headers`` read for framing, once (see HeaderBlock)."""
    kept, declared, close = _server_owned(headers)
    return HeaderBlock(tuple(kept), declared, close, header_fields(kept))


def _server_owned(headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int | None, bool]:
    """The headers less Transfer-Encoding and Connection (the server writes its own), the first
    Content-Length's value (None if absent or not a number), and whether a Connection field said close."""
    kept = []
    declared: int | None = None
    length_seen = False
    close = False
    for name, value in headers:
        lname = name.lower()
        if lname in _SERVER_OWNED:
            close = close or (lname == "connection" and "close" in value.lower())
            continue
        if lname == "content-length" and not length_seen:
            length_seen = True
            value_ = value.strip()
            declared = int(value_) if value_.isdigit() else None
        kept.append((name, value))
    return kept, declared, close


_SERVER_OWNED = frozenset({"transfer-encoding", "connection"})


# The framings made for a HeaderBlock (an ASGI app's fields, the same block response after response) in the current
# second (their head holds its Date): (id of the block, status, method, version, close, body_length) → (block, framing).
# A Framing is never changed once made, so responses share it; the block is kept to tell a reused id from it.
_made: dict[tuple[int, int, str, str, bool, int | None], tuple[HeaderBlock, Framing]] = {}
_made_in = b""  # the Date and Server fields they were made with (date_fields())
MADE_MAX = 256


def framing_of(status: int, headers: Headers, *, method: str, version: str, close: bool,
          body_length: int | None = None) -> Framing:
    """The framing of one response (see _framing); made once a second for a HeaderBlock's same response."""
    if type(headers) is not HeaderBlock:
        return _framing(status, headers, method, version, close, body_length)
    global _made_in
    date = date_fields()
    if date is not _made_in:
        _made.clear()
        _made_in = date
    key = (id(headers), status, method, version, close, body_length)
    made = _made.get(key)
    if made is not None and made[0] is headers:
        return made[1]
    framing = _framing(status, headers, method, version, close, body_length)
    if len(_made) < MADE_MAX:
        _made[key] = (headers, framing)
    return framing


def _framing(status: int, headers: Headers, method: str, version: str, close: bool, body_length: int | None) -> Framing:
    """The framing of one response.

    ``headers`` are the handler's; a Content-Length in them is honoured (and
    enforced), otherwise ``body_length`` (a body known whole) is announced,
    otherwise the body is chunked on HTTP/1.1 or ends with the connection on
    HTTP/1.0.  Transfer-Encoding and Connection from a handler are never
    passed on: the server owns the framing and the connection; a handler's
    ``Connection: close`` closes it after this response (``close`` is the
    request side's wish: its own, a draining worker's, the last request read).
    """
    version = "1.0" if version == "1.0" else "1.1"
    if status == 101:
        # Switching Protocols: the handler's Connection and Upgrade fields say what follows, and the
        # connection goes on in the new protocol (Connection.switch_protocol), whatever the request said.
        # (A block has no Connection field left: ASGI's http scope cannot switch protocols.)
        given = headers.fields if isinstance(headers, HeaderBlock) else headers
        return Framing(_NONE, None, False, response_head(status, given, version=version))
    wire: bytes | None = None  # the handler's fields on the wire, when made once already
    kept: Sequence[tuple[str, str]]
    if isinstance(headers, HeaderBlock):
        kept, declared, asked_close, wire = headers.fields, headers.declared, headers.close, headers.wire
    else:
        kept, declared, asked_close = _server_owned(headers)
    close = close or asked_close
    bodiless = status in (204, 304) or status < 200
    extra = b""  # the server's framing field, after the handler's
    if bodiless:
        kept = [(n, v) for n, v in kept if n.lower() != "content-length" or status == 304]
        wire = None
        delimit, length = _NONE, None
    elif declared is not None:
        delimit, length = _LENGTH, declared
    elif body_length is not None:
        extra = b"Content-Length: %d\r\n" % body_length
        delimit, length = _LENGTH, body_length
    elif method == "HEAD":
        delimit, length = _NONE, None
    elif version == "1.1":
        extra = b"Transfer-Encoding: chunked\r\n"
        delimit, length = _CHUNKED, None
    else:
        delimit, length, close = _CLOSE, None, True
    if method == "HEAD":
        # The headers describe the body a GET would get; none is sent (RFC 9110 §9.3.2).
        delimit, length = _NONE, None
    fields = (header_fields(kept) if wire is None else wire) + extra
    head = head_of_fields(status, fields, close=close, version=version)
    return Framing(delimit, length, close, head)



class BodyWriter:
    """Turns one response's body bytes into wire bytes that keep to its Framing."""

    __slots__ = ("framing", "remaining", "body_bytes", "overrun")

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self.remaining = framing.length  # LENGTH: bytes still owed
        self.body_bytes = 0  # bytes of body the handler offered
        self.overrun = 0  # bytes offered past the announced length, never sent

    def data(self, data: bytes) -> bytes:
        """What goes on the wire for ``data`` (possibly nothing)."""
        return self.wire(self.take(data))

    def take(self, data: bytes) -> bytes:
        """The part of ``data`` that is body on the wire: all of it, up to the length still owed, or none (HEAD...)."""
        self.body_bytes += len(data)
        delimit = self.framing.delimit
        if delimit is _LENGTH:
            assert self.remaining is not None
            if len(data) > self.remaining:
                self.overrun += len(data) - self.remaining
                data = data[: self.remaining]
            self.remaining -= len(data)
            return data
        return b"" if delimit is _NONE else data

    def wire(self, body: bytes) -> bytes:
        """``body`` (from take()) framed for the wire: a chunk when chunked, as it is otherwise."""
        if self.framing.delimit is _CHUNKED:
            return chunk(body) if body else b""
        return body

    def allowance(self, offered: int) -> int:
        """How many of ``offered`` bytes sent by sendfile may go out (counted as sent)."""
        if self.framing.delimit is _NONE:
            return 0
        allowed = offered if self.remaining is None else min(offered, self.remaining)
        self.body_bytes += offered
        self.overrun += offered - allowed
        if self.remaining is not None:
            self.remaining -= allowed
        return allowed

    def give_back(self, unsent: int) -> None:
        """Bytes allowed by allowance() that could not be sent after all (the file was shorter)."""
        if unsent and self.remaining is not None:
            self.remaining += unsent
            self.body_bytes -= unsent

    def end(self) -> bytes:
        """The bytes that end the body (the last chunk, if chunked)."""
        return LAST_CHUNK if self.framing.delimit is _CHUNKED else b""

    def whole(self, body: bytes) -> bytes:
        """``body`` (from take(), all of the response's body) framed for the wire with its end: wire() + end()."""
        if self.framing.delimit is _CHUNKED:
            return chunk(body) + LAST_CHUNK if body else LAST_CHUNK
        return body

    @property
    def short(self) -> int:
        """Bytes announced but never offered."""
        if self.framing.delimit is not _LENGTH or self.remaining is None:
            return 0
        return self.remaining

    @property
    def must_close(self) -> bool:
        """After this response the connection cannot carry another one.

        A body cut at its Content-Length does not close it: what went out is
        a whole message of the announced length, and the bytes cut off never
        reached the wire, so the next response cannot be mistaken for them.
        """
        framing = self.framing  # short's test, written out: this is asked after every response
        return framing.close or (framing.delimit is _LENGTH and bool(self.remaining))

    def mismatch(self) -> str | None:
        """A one-line account of a body that did not match its Content-Length."""
        if self.overrun:
            return (f"The response declared Content-Length {self.framing.length} but offered "
                    f"{self.body_bytes} bytes; cut at {self.framing.length}")
        if self.short:
            return (f"The response declared Content-Length {self.framing.length} but ended after "
                    f"{self.body_bytes} bytes; the connection closed")
        return None


def sent_headers(writer: BodyWriter | None) -> tuple[tuple[str, str], ...]:
    """The header fields of the head ``writer`` framed as they went out: the handler's and the server's
    (Date, Server, Content-Length or Transfer-Encoding, Connection), in wire order.  () before any head."""
    if writer is None:
        return ()
    lines = writer.framing.head.decode("latin-1").split("\r\n")[1:-2]  # less the status line and the blank line
    return tuple((name, value) for name, _, value in (line.partition(": ") for line in lines))
