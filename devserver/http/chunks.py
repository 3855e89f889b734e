"""A check of chunked request bodies' size lines, beside llhttp.

llhttp accepts a chunk extension with an empty value (``5;name=``), which
RFC 9112 §7.1.1 does not allow (``chunk-ext-val = token / quoted-string``);
a request carrying one is refused at once with 400 rather than served.
This follows the chunk framing of one body from its first byte and looks
at each size line; llhttp still does the decoding.
"""

from __future__ import annotations

import re

from devserver.http.errors import ProtocolError

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_SIZE_LINE = re.compile(rb"[0-9A-Fa-f]+(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED
                        + rb"))?)*[ \t]*")
MAX_LINE = 4096  # a size line longer than this is refused


class ChunkChecker:
    """Fed the body's bytes in order; raises ProtocolError on a malformed size line."""

    __slots__ = ("_line", "_skip", "_trailers", "_done")

    def __init__(self) -> None:
        self._line = b""
        self._skip = 0  # chunk data and its CRLF still to pass over
        self._trailers = False
        self._done = False

    def feed(self, data: bytes) -> None:
        while data and not self._done:
            if self._skip:
                step = min(self._skip, len(data))
                self._skip -= step
                data = data[step:]
                continue
            if self._line:  # a line begun in an earlier piece (its CR and LF may arrive apart)
                data, self._line = self._line + data, b""
            end = data.find(b"\r\n")
            if end < 0:
                if len(data) > MAX_LINE:
                    raise ProtocolError(400, "Chunk size line too long")
                self._line = data
                return
            line, data = data[:end], data[end + 2 :]
            self._end_line(line)

    def _end_line(self, line: bytes) -> None:
        if self._trailers:
            self._done = not line  # trailer fields end with an empty line; llhttp checks the fields
            return
        if _SIZE_LINE.fullmatch(line) is None:
            raise ProtocolError(400, "Malformed chunk size line")
        size = int(line.split(b";", 1)[0].strip(b" \t"), 16)
        if size == 0:
            self._trailers = True
        else:
            self._skip = size + 2
