"""What a request head means, once it is well formed: target form, Host, method.

RFC 9112 §3.2 names four forms of request-target and says which method each
belongs to; §3.2 also makes Host mandatory and valid.  These are the server's
rules about a parsed head, kept apart from the byte-level parser in http.py
and from any socket.
"""

from __future__ import annotations

import re
from enum import Enum

from devserver.http.errors import ProtocolError
from devserver.kit.frozen import record
from devserver.kit.memo import MemoTable


class Form(Enum):
    ORIGIN = "origin"  # /path?query
    ABSOLUTE = "absolute"  # http://host/path?query (proxies send it; servers MUST accept it)
    AUTHORITY = "authority"  # host:port, only for CONNECT
    ASTERISK = "asterisk"  # *, only for OPTIONS


@record
class Target:
    """A request-target taken apart; ``path`` is still percent-encoded."""

    form: Form
    path: str
    query: str
    authority: str | None = None  # absolute form: replaces the Host field (RFC 9112 §3.2.2)


# The methods llhttp parses, which a WSGI app may implement; any other token gets 501.
KNOWN_METHODS = frozenset(
    "DELETE GET HEAD POST PUT OPTIONS TRACE PATCH PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK "
    "BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE "
    "PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)

# RFC 3986: host = IP-literal / IPv4address / reg-name, then an optional port.  No userinfo.
_REG_NAME = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
_IP_LITERAL = r"\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"
_HOST = re.compile(rf"(?:{_IP_LITERAL}|{_REG_NAME})(?::[0-9]*)?")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)


def valid_host(value: str) -> bool:
    """A Host field value (or an authority) as RFC 9112 §3.2 allows it; empty is allowed."""
    return _valid_hosts[value]


_valid_hosts: MemoTable[str, bool] = MemoTable(lambda value: _HOST.fullmatch(value) is not None, 256)  # a client repeats its Host


def split_path(rest: str) -> tuple[str, str]:
    """Path and query of ``rest``; a fragment is never part of a request (RFC 9112 §3.2.1)."""
    rest = rest.partition("#")[0]
    path, _, query = rest.partition("?")
    return path, query


def _origin(target: str) -> Target:
    path, query = split_path(target)
    return Target(Form.ORIGIN, path, query)


def _absolute(target: str) -> Target:
    match = _SCHEME.fullmatch(target)
    if match is None:
        raise ProtocolError(400, "Malformed request target")
    scheme, authority, rest = match.groups()
    if scheme.lower() not in ("http", "https"):
        raise ProtocolError(400, f"Unsupported scheme in request target: {scheme}")
    if not authority or "@" in authority or not valid_host(authority):
        raise ProtocolError(400, "Invalid authority in request target")
    path, query = split_path(rest)
    return Target(Form.ABSOLUTE, path or "/", query, authority)


def parse_target(method: str, target: str) -> Target:
    """The form of ``target`` and its parts, or ProtocolError when method and form do not go together."""
    if method == "CONNECT":
        # A 2xx would mean "tunnel now"; a development server does not tunnel.
        raise ProtocolError(501, "CONNECT is not supported")
    if target.startswith("/"):
        return _origin(target)
    if target == "*":
        if method != "OPTIONS":
            raise ProtocolError(400, "The asterisk form is only for OPTIONS")
        return Target(Form.ASTERISK, "*", "")
    if "://" in target:
        return _absolute(target)
    raise ProtocolError(400, "Malformed request target")


def check_method(method: str) -> None:
    """501 for a method token no handler here can implement (RFC 9110 §9.1)."""
    if method not in KNOWN_METHODS:
        raise ProtocolError(501, f"Method {method} not implemented")


def check_host(hosts: list[str], version: str) -> str | None:
    """The one Host value of ``hosts`` (the head's Host values; None on HTTP/1.0 without one), or ProtocolError
    (RFC 9112 §3.2)."""
    if len(hosts) == 1:
        host = hosts[0].strip()
        if not _valid_hosts[host]:
            raise ProtocolError(400, "Invalid Host header")
        return host
    if hosts or version == "1.1":
        raise ProtocolError(400, "Exactly one Host header is required")
    return None
