"""A plain-HTTP request on the TLS port: recognised by its first byte, answered with where to go instead.

Every TLS connection starts with a handshake record (byte 0x16); an HTTP
request starts with a method's letters.  nginx answers the latter with its
497 turned into a 400; this says the same in one plain-text line with the
URL to use, so whoever typed ``http://`` sees what to type.  Sans-IO: bytes
in, bytes out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

TLS_HANDSHAKE = 0x16
_REQUEST_LINE = re.compile(rb"[A-Z]{3,10} (/[!-~]*) HTTP/1\.[01]\r?\n")
_HOST = re.compile(rb"\r?\nhost:[ \t]*([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?[ \t]*\r?\n", re.IGNORECASE)


def is_tls(first: bytes) -> bool:
    """Whether a connection's first byte begins a TLS handshake."""
    return first[:1] == bytes((TLS_HANDSHAKE,))


def https_answer(received: bytes, port: int, allows: Callable[[str], bool] | None = None) -> bytes:
    """The 400 for a plain-HTTP request (``received``: its first bytes) on TLS port ``port``.

    The URL keeps the request's host only when ``allows`` (the server's Host
    check, ``HostPolicy.allows``) accepts it, else says ``localhost``; the
    target, only when it is plain printable ASCII.
    """
    line = _REQUEST_LINE.match(received)
    target = line.group(1).decode("ascii") if line else "/"
    host_match = _HOST.search(received)
    host = host_match.group(1).decode("ascii").lower() if host_match else ""
    if not host or (allows is not None and not allows(host)):
        host = "localhost"
    body = f"This server speaks HTTPS: https://{host}:{port}{target}\n".encode("ascii")
    return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"X-Content-Type-Options: nosniff\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
