"""The protocol layer's one error: a request the server refuses, with its status."""

from __future__ import annotations


class ProtocolError(Exception):
    """A request the server refuses; carries the status to answer with.

    After a protocol error the connection is always closed: the byte stream can
    no longer be trusted to be framed the way the client meant (RFC 9112 §9.6).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
