"""Outbound HTTP hooks: http.client (so urllib, urllib3 and requests), httpx's transports, aiohttp's session."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from devserver.debug.tracebacks import MASK, SECRET
from devserver.ipc.events import OutboundRecord
from devserver.probes import rounded_ms
from devserver.probes.patching import replace
from devserver.probes.recorder import Recorder, current
from devserver.probes.source import app_frame

if TYPE_CHECKING:
    from http.client import HTTPConnection, HTTPResponse

    import httpx

MAX_URL = 2000


def shown_url(url: str) -> str:
    """``url`` with its credentials and the values of secret-looking query parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:MAX_URL]
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = parts.query
    if query and SECRET.search(query):
        query = "&".join(f"{quote(k, safe='')}={MASK if SECRET.search(k) else quote(v, safe='/:,')}"
                         for k, v in parse_qsl(query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))[:MAX_URL]


def _size(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _call(recorder: Recorder, method: str, url: str, started: float, status: int, size: int, client: str,
          source: str, error: str = "") -> None:
    recorder.call(OutboundRecord(method, shown_url(url), status, rounded_ms((time.perf_counter() - started) * 1000),
                                 rounded_ms(recorder.since(started)), size, client, source, error))


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


# http.client ---------------------------------------------------------------
_CALL = "_devserver_call"  # on the connection, from putrequest() to getresponse(): (recorder, method, url, start, source)


def _full_url(connection: HTTPConnection, target: str) -> str:
    if "://" in target:  # absolute-form: through a proxy
        return target
    import http.client

    scheme = "https" if isinstance(connection, http.client.HTTPSConnection) else "http"
    port = "" if connection.port == connection.default_port else f":{connection.port}"
    return f"{scheme}://{connection.host}{port}{target}"


def _failed(connection: HTTPConnection, exc: BaseException) -> None:
    """The call on ``connection`` failed before its response's head (refused, reset, timed out): recorded once,
    by the innermost hook that saw it fail."""
    call: tuple[Recorder, str, str, float, str] | None = getattr(connection, _CALL, None)
    if call is not None:
        setattr(connection, _CALL, None)
        recorder, method, target, started, source = call
        _call(recorder, method, _full_url(connection, target), started, 0, 0, "http.client", source, _error(exc))


def install_http_client() -> None:
    """From putrequest() to the response's head; urllib3 (requests) calls both itself, not request().  A call
    that fails on the way (connect() runs in endheaders()' first send(); urllib3 sends the body with send()) is
    recorded with its error where it failed: getresponse() is never reached then."""
    import http.client

    connection = http.client.HTTPConnection
    # The originals as they are called here: arguments passed through as given.
    putrequest: Callable[..., None] = connection.putrequest
    endheaders: Callable[..., None] = connection.endheaders
    send: Callable[..., None] = connection.send
    getresponse: Callable[[HTTPConnection], HTTPResponse] = connection.getresponse

    def recording_putrequest(self: HTTPConnection, method: str, url: str, *args: object, **kwargs: object) -> None:
        recorder = current()
        if recorder is not None:
            setattr(self, _CALL, (recorder, method, url, time.perf_counter(), app_frame()))
        putrequest(self, method, url, *args, **kwargs)

    def recording_endheaders(self: HTTPConnection, *args: object, **kwargs: object) -> None:
        try:
            endheaders(self, *args, **kwargs)
        except Exception as exc:
            _failed(self, exc)
            raise

    def recording_send(self: HTTPConnection, data: object) -> None:
        try:
            send(self, data)
        except Exception as exc:
            _failed(self, exc)
            raise

    def recording_getresponse(self: HTTPConnection) -> HTTPResponse:
        call: tuple[Recorder, str, str, float, str] | None = getattr(self, _CALL, None)
        if call is None:
            return getresponse(self)
        try:
            response = getresponse(self)
        except Exception as exc:
            _failed(self, exc)
            raise
        setattr(self, _CALL, None)
        recorder, method, target, started, source = call
        _call(recorder, method, _full_url(self, target), started, response.status,
              _size(response.getheader("content-length")), "http.client", source)
        return response

    for name, replacement in (("putrequest", recording_putrequest), ("endheaders", recording_endheaders),
                              ("send", recording_send), ("getresponse", recording_getresponse)):
        replace(connection, name, replacement)


# httpx ---------------------------------------------------------------------
def _httpx_call(recorder: Recorder, request: httpx.Request, started: float, source: str,
                response: httpx.Response | None, error: str = "") -> None:
    """One httpx call, answered or failed, as the sync and the async transport both record it."""
    status, size = (0, 0) if response is None else (response.status_code, _size(response.headers.get("content-length")))
    _call(recorder, request.method, str(request.url), started, status, size, "httpx", source, error)


def install_httpx() -> None:
    import httpx

    sync: Callable[[httpx.HTTPTransport, httpx.Request], httpx.Response] = httpx.HTTPTransport.handle_request
    asynchronous: Callable[[httpx.AsyncHTTPTransport, httpx.Request], Awaitable[httpx.Response]] = \
        httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        recorder = current()
        if recorder is None:
            return sync(self, request)
        started, source = time.perf_counter(), app_frame()
        try:
            response = sync(self, request)
        except Exception as exc:
            _httpx_call(recorder, request, started, source, None, _error(exc))
            raise
        _httpx_call(recorder, request, started, source, response)
        return response

    async def handle_async_request(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        recorder = current()
        if recorder is None:
            return await asynchronous(self, request)
        started, source = time.perf_counter(), app_frame()
        try:
            response = await asynchronous(self, request)
        except Exception as exc:
            _httpx_call(recorder, request, started, source, None, _error(exc))
            raise
        _httpx_call(recorder, request, started, source, response)
        return response

    replace(httpx.HTTPTransport, "handle_request", handle_request)
    replace(httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request)


# aiohttp -------------------------------------------------------------------
def install_aiohttp() -> None:
    import aiohttp

    request: Callable[..., Awaitable[aiohttp.ClientResponse]] = aiohttp.ClientSession._request

    async def recording_request(self: aiohttp.ClientSession, method: str, str_or_url: object,
                                **kwargs: object) -> aiohttp.ClientResponse:
        recorder = current()
        if recorder is None:
            return await request(self, method, str_or_url, **kwargs)
        started, source = time.perf_counter(), app_frame()
        try:
            response = await request(self, method, str_or_url, **kwargs)
        except Exception as exc:
            _call(recorder, method, str(str_or_url), started, 0, 0, "aiohttp", source, _error(exc))
            raise
        _call(recorder, method, str(response.url), started, response.status, response.content_length or 0, "aiohttp",
              source)
        return response

    replace(aiohttp.ClientSession, "_request", recording_request)
