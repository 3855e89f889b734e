"""Reason phrases for status codes, as the response line and the server's pages show them."""

from __future__ import annotations

from http import HTTPStatus


def reason(status: int) -> str:
    """The standard reason phrase for ``status`` ("Unknown" if none)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
