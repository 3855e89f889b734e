"""A tiny routing framework on plain WSGI (PEP 3333), so its apps run on any server.

    app = App([("/hello", hello)])          # a list of (path, handler) pairs

    @app.route("/items/<id:int>", methods=["GET", "POST"])
    def item(request: Request, id: int) -> dict:
        return {"id": id, "q": request.args.get("q")}

A router is a table, not a chain (bottle's ``Router``): static paths are dict
keys, dynamic ones compiled regexes tried in insertion order. Routing is on
PATH_INFO alone, so an app mounted under a SCRIPT_NAME (devserver's ``/site.py``)
sees the same paths; ``request.url_for`` puts SCRIPT_NAME back into links.

A handler returns a ``Response``, ``str``/``bytes`` (200 text/html) or a
``dict``/``list`` (JSON), optionally in Flask's tuples ``(body, status)``,
``(body, headers)`` or ``(body, status, headers)``; or it raises a
``Response``/``HTTPError`` (``abort()``). Any other exception propagates out of
``App.__call__`` on purpose: the server owns the 500 page, and devserver's
shows the traceback that catching would hide.

Text is not escaped for you: put anything that came from a request (or a
database) into HTML through ``escape()``.

Slashes are strict, as in Werkzeug: ``/users/1/`` for the rule ``/users/<id>``
(or ``/users`` for ``/users/``) is answered with a 308 to the routed form,
query string kept, when that form has a route for the method; otherwise 404.
"""

from __future__ import annotations

import email.parser
import email.policy
import html
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cached_property
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import IO, Any, Generic, NoReturn, TypeVar, cast
from urllib.parse import parse_qsl, quote, urlencode

Handler = Callable[..., object]
StartResponse = Callable[..., object]
HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | None

# Statuses whose responses carry no body (RFC 9110 §6.4.1); 204 and 1xx must
# not carry Content-Length either (RFC 9110 §8.6), and WSGI validators reject
# a Content-Type on them.
_NO_BODY = frozenset({100, 101, 102, 103, 204, 304})


def escape(value: object) -> str:
    """``value`` as text that is safe in HTML content and in quoted attribute values.

    ``& < > " '`` become character references. Anything not a ``str`` goes
    through ``str()`` first, so path parameters of any type can be passed.
    """
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def _status_text(status: int) -> tuple[str, str]:
    """The reason phrase and description of ``status``."""
    try:
        return HTTPStatus(status).phrase, HTTPStatus(status).description
    except ValueError:
        return "Unknown", ""


def _header_pairs(headers: HeaderInput) -> list[tuple[str, str]]:
    """``headers`` (a mapping or (name, value) pairs) as a list of pairs."""
    pairs = []
    for pair in headers.items() if isinstance(headers, Mapping) else (headers or ()):
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)):
            raise TypeError(f"headers must be a dict or (name, value) pairs of str, found {pair!r}")
        pairs.append((pair[0], pair[1]))
    return pairs


def _check_header(name: str, value: str) -> None:
    # PEP 3333 header values are latin-1 "native strings"; CR/LF would let
    # user input (a redirect target, a cookie) inject headers.
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name!r}: value contains a line break")
    value.encode("latin-1")


class Response(Exception):
    """A status, headers and a byte body. Raise it to answer at once.

    It is an exception (as bottle's ``HTTPResponse`` is) so that a handler,
    or a helper deep inside one, can ``raise`` the answer.
    """

    def __init__(self, body: str | bytes = "", status: int = 200, headers: HeaderInput = None,
                 content_type: str = "text/html; charset=utf-8") -> None:
        super().__init__(status)
        self.status = int(status)
        self.body: bytes = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.headers: list[tuple[str, str]] = []
        for name, value in _header_pairs(headers):
            self.add_header(name, value)
        if self.get_header("Content-Type") is None:
            self.headers.append(("Content-Type", content_type))

    @classmethod
    def json(cls, obj: object, status: int = 200, headers: HeaderInput = None) -> Response:
        """``obj`` serialised as JSON (UTF-8)."""
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return cls(body, status, headers, content_type="application/json")

    def get_header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        return next((v for n, v in self.headers if n.lower() == lname), None)

    def add_header(self, name: str, value: str) -> None:
        """Add a header, keeping others of the same name (Set-Cookie)."""
        _check_header(name, value)
        self.headers.append((name, value))

    def set_header(self, name: str, value: str) -> None:
        """Set header ``name``, replacing any earlier values."""
        lname = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != lname]
        self.add_header(name, value)

    def set_cookie(self, name: str, value: str, max_age: int | None = None, path: str = "/",
                   httponly: bool = True, samesite: str | None = "Lax", secure: bool = False) -> None:
        """Add a Set-Cookie header. Values outside ASCII must be quoted by the caller."""
        cookie: SimpleCookie = SimpleCookie()
        cookie[name] = value
        morsel = cookie[name]
        morsel["path"] = path
        if max_age is not None:
            morsel["max-age"] = str(max_age)
        if samesite:
            morsel["samesite"] = samesite
        morsel["httponly"] = httponly
        morsel["secure"] = secure
        self.add_header("Set-Cookie", morsel.OutputString())

    def delete_cookie(self, name: str, path: str = "/") -> None:
        """Tell the client to drop cookie ``name`` (Max-Age=0, RFC 6265 §5.2.2)."""
        self.set_cookie(name, "", max_age=0, path=path)

    def send(self, start_response: StartResponse, head: bool = False) -> list[bytes]:
        """Start the WSGI response and return its body iterable.

        ``head`` drops the body but keeps the headers, Content-Length included
        (RFC 9110 §9.3.2).
        """
        headers = list(self.headers)
        body = self.body
        if self.status in _NO_BODY:
            body = b""
            headers = [(n, v) for n, v in headers if n.lower() not in ("content-type", "content-length")]
        elif self.get_header("Content-Length") is None:
            headers.append(("Content-Length", str(len(body))))
        start_response(f"{self.status} {_status_text(self.status)[0]}", headers)
        return [] if head or not body else [body]


class HTTPError(Response):
    """An error with its own status; renders a small HTML page."""

    def __init__(self, status: int, message: str = "", headers: HeaderInput = None) -> None:
        phrase, description = _status_text(status)
        self.message = message or description
        title = f"{status} {escape(phrase)}"
        page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>"
                f"<body><h1>{title}</h1><p>{escape(self.message)}</p></body></html>\n")
        super().__init__(page, status, headers)
        self.args = (status, self.message)


def abort(status: int, message: str = "") -> NoReturn:
    """Stop the handler and answer with an error page."""
    raise HTTPError(status, message)


# Characters that already mean something in a URL, and "%" of escapes already made.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def redirect(location: str, status: int = 302) -> Response:
    """A redirect to ``location`` (return it or raise it).

    Non-ASCII characters and spaces are percent-encoded so the header is
    valid; characters that already mean something in a URL are kept.
    """
    url = quote(location, safe=_URL_SAFE)
    return Response(f'<a href="{escape(url)}">{escape(url)}</a>\n', status, {"Location": url})


V = TypeVar("V")
Environ = dict[str, object]  # PEP 3333's environ: str values for the CGI names, objects for the wsgi.* ones


def _field(environ: Mapping[str, object], name: str) -> str:
    """A CGI variable of the environ ("" if absent): PEP 3333 makes them native strings."""
    return str(environ.get(name, ""))


class MultiDict(Mapping[str, V], Generic[V]):
    """Several values per name; ``d[name]`` and ``get`` give the first."""

    def __init__(self, pairs: Iterable[tuple[str, V]] = ()) -> None:
        self._lists: dict[str, list[V]] = {}
        for name, value in pairs:
            self._lists.setdefault(name, []).append(value)

    def __getitem__(self, name: str) -> V:
        return self._lists[name][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)

    def getlist(self, name: str) -> list[V]:
        """Every value for ``name``, in order (empty if none)."""
        return list(self._lists.get(name, ()))


class Headers(MultiDict[str]):
    """Request headers from the environ, by case-insensitive name."""

    def __init__(self, environ: Mapping[str, object]) -> None:
        super().__init__((key.removeprefix("HTTP_").replace("_", "-").lower(), str(value))
                         for key, value in environ.items()
                         if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"))

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def getlist(self, name: str) -> list[str]:
        return super().getlist(name.lower())


@dataclass(frozen=True, slots=True)
class FileUpload:
    """A file sent in a multipart/form-data body."""

    filename: str
    content_type: str
    data: bytes


class Request:
    """A read-only view of one WSGI environ; parts are parsed on first use."""

    max_body = 16 * 1024 * 1024  # a dev server: guard memory, not enforce policy

    def __init__(self, environ: Environ) -> None:
        self.environ = environ
        self.method: str = (_field(environ, "REQUEST_METHOD") or "GET").upper()
        # PEP 3333 carries paths as latin-1 "bytes-as-str"; browsers send UTF-8.
        self.path: str = _utf8(_field(environ, "PATH_INFO")) or "/"
        self.script_name: str = _utf8(_field(environ, "SCRIPT_NAME"))
        self.query_string: str = _field(environ, "QUERY_STRING")
        # The media type without parameters, lower case ("" if none).
        self.content_type = _field(environ, "CONTENT_TYPE").split(";", 1)[0].strip().lower()

    def url_for(self, path: str, **query: object) -> str:
        """The URL of app path ``path`` (unquoted text), with SCRIPT_NAME in front."""
        url = quote(self.script_name.rstrip("/") + path)
        return f"{url}?{urlencode(query)}" if query else url

    @cached_property
    def args(self) -> MultiDict[str]:
        """The query string's arguments."""
        return MultiDict(parse_qsl(self.query_string, keep_blank_values=True))

    @cached_property
    def headers(self) -> Headers:
        """The request headers, by case-insensitive name."""
        return Headers(self.environ)

    @cached_property
    def cookies(self) -> dict[str, str]:
        """Cookie name → value. A malformed cookie is skipped, not fatal."""
        found: dict[str, str] = {}
        # One pair at a time: SimpleCookie stops at the first bad pair, and
        # localhost collects cookies from every app a developer runs.
        for pair in _field(self.environ, "HTTP_COOKIE").split(";"):
            try:
                parsed: SimpleCookie = SimpleCookie(pair.strip())
            except CookieError:
                continue
            found.update((name, morsel.value) for name, morsel in parsed.items())
        return found

    @cached_property
    def body(self) -> bytes:
        """The request body, read once and never past CONTENT_LENGTH (PEP 3333)."""
        too_big = f"The body is larger than {self.max_body} bytes."
        length = _field(self.environ, "CONTENT_LENGTH").strip()
        if length.isdigit():
            size = int(length)
            if size > self.max_body:
                raise HTTPError(413, too_big)
        elif self.environ.get("wsgi.input_terminated"):
            # The server ends the stream at the body's end (gunicorn's chunked
            # bodies); one byte past the limit tells whether it is exceeded.
            size = self.max_body + 1
        else:
            return b""
        stream = cast("IO[bytes] | None", self.environ.get("wsgi.input"))
        data = stream.read(size) if size and stream is not None else b""
        if len(data) > self.max_body:
            raise HTTPError(413, too_big)
        return data

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON; None if empty; HTTPError 400 if invalid."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            raise HTTPError(400, f"Invalid JSON body: {error}") from None

    @cached_property
    def form(self) -> MultiDict[str]:
        """Form fields from an urlencoded or multipart body (text fields only)."""
        return self._parsed_form[0]

    @cached_property
    def files(self) -> MultiDict[FileUpload]:
        """Uploaded files (``FileUpload``) from a multipart/form-data body."""
        return self._parsed_form[1]

    @cached_property
    def _parsed_form(self) -> Form:
        parser = _FORM_PARSERS.get(self.content_type)
        if parser is None:
            return MultiDict(), MultiDict()
        return parser(self)


Form = tuple[MultiDict[str], MultiDict[FileUpload]]  # a body's text fields and its files


def _utf8(text: str) -> str:
    return text.encode("latin-1", "replace").decode("utf-8", "replace")


def _parse_urlencoded(request: Request) -> Form:
    text = request.body.decode("utf-8", "replace")
    return MultiDict(parse_qsl(text, keep_blank_values=True)), MultiDict()


def _parse_multipart(request: Request) -> Form:
    # email's MIME parser reads multipart/form-data (RFC 7578) once given the
    # Content-Type header (which carries the boundary) in front of the body.
    head = f"Content-Type: {_field(request.environ, 'CONTENT_TYPE')}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(EmailMessage, policy=email.policy.HTTP).parsebytes(head + request.body)
    if not message.is_multipart():
        raise HTTPError(400, "Malformed multipart/form-data body.")
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, FileUpload]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields.append((name, data.decode(part.get_content_charset() or "utf-8", "replace")))
        else:
            files.append((name, FileUpload(filename, part.get_content_type(), data)))
    return MultiDict(fields), MultiDict(files)


_FORM_PARSERS: dict[str, Callable[[Request], Form]] = {
    "application/x-www-form-urlencoded": _parse_urlencoded,
    "multipart/form-data": _parse_multipart,
}

# Path parameter types: the regex one URL segment must match, and the
# conversion applied to it. A value the regex refuses is simply no match (404).
_FILTERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "str": (r"[^/]+", str),
    "int": (r"-?[0-9]+", int),
    "float": (r"-?[0-9]+(?:\.[0-9]+)?", float),
    "path": (r".+", str),
}
_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?>")


@dataclass(frozen=True, slots=True)
class Route:
    """One (rule, method) → handler entry, with how to call the handler."""

    rule: str
    method: str
    handler: Handler
    wants_request: bool

    def call(self, request: Request, params: dict[str, object]) -> object:
        return self.handler(request, **params) if self.wants_request else self.handler(**params)


@dataclass(frozen=True, slots=True)
class _Pattern:
    regex: re.Pattern[str]
    converters: dict[str, Callable[[str], object]]

    def match(self, path: str) -> dict[str, object] | None:
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        try:
            return {name: self.converters[name](text) for name, text in found.groupdict().items()}
        except ValueError:
            return None


def _compile(rule: str) -> _Pattern | None:
    """The rule's pattern, or None if it is a static path."""
    parts: list[str] = []
    converters: dict[str, Callable[[str], object]] = {}
    end = 0
    for param in _PARAM.finditer(rule):
        name, kind = param.group(1), param.group(2) or "str"
        if kind not in _FILTERS:
            raise ValueError(f"route {rule!r}: unknown parameter type {kind!r}")
        if name in converters:
            raise ValueError(f"route {rule!r}: parameter {name!r} appears twice")
        regex, converters[name] = _FILTERS[kind]
        parts += [re.escape(rule[end:param.start()]), f"(?P<{name}>{regex})"]
        end = param.end()
    if not converters:
        return None
    parts.append(re.escape(rule[end:]))
    return _Pattern(re.compile("".join(parts)), converters)


def _wants_request(handler: Handler, params: Iterable[str]) -> bool:
    """True if ``handler`` takes a positional argument besides the path parameters.

    Decided once at registration, so a zero-argument ``def hello(): ...`` and
    ``def item(id)`` work as well as ``def item(request, id)``.
    """
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind == inspect.Parameter.VAR_POSITIONAL or (p.kind in positional and p.name not in params)
               for p in signature.parameters.values())


def _for_method(table: dict[str, Route], method: str) -> Route | None:
    """The route for ``method``; HEAD falls back to GET (RFC 9110 §9.3.2)."""
    return table.get(method) or (table.get("GET") if method == "HEAD" else None)


class Router:
    """Static rules in a dict, dynamic rules as regexes in insertion order."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Route]] = {}
        self._dynamic: dict[str, tuple[_Pattern, dict[str, Route]]] = {}

    def add(self, rule: str, handler: Handler, methods: Iterable[str]) -> None:
        """Register ``handler`` for ``rule``; a later (rule, method) replaces an earlier one."""
        if not rule.startswith("/"):
            raise ValueError(f"route {rule!r} must start with '/'")
        pattern = _compile(rule)
        if pattern is None:
            table = self._static.setdefault(rule, {})
        else:
            table = self._dynamic.setdefault(rule, (pattern, {}))[1]
        wants = _wants_request(handler, pattern.converters if pattern else ())
        for method in methods:
            table[method.upper()] = Route(rule, method.upper(), handler, wants)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, object]]:
        """The route and parameters for a request; raises HTTPError 404 or 405."""
        allowed: set[str] = set()
        for table, params in self._candidates(path):
            route = _for_method(table, method)
            if route is not None:
                return route, params
            allowed.update(table)
        if not allowed:
            raise HTTPError(404, f"Nothing is routed at {path}.")
        if "GET" in allowed:
            allowed.add("HEAD")  # HEAD falls back to GET (RFC 9110 §9.3.2)
        raise HTTPError(405, f"{method} is not allowed here.", {"Allow": ", ".join(sorted(allowed))})

    def other_slash_form(self, method: str, path: str) -> str | None:
        """``path`` with its trailing slash added or removed, if that form has a route for ``method``."""
        other = path[:-1] if path.endswith("/") else path + "/"
        # "//host/x" in a Location header is another site: never redirect there.
        if not other.startswith("/") or other.startswith("//"):
            return None
        if any(_for_method(table, method) is not None for table, _ in self._candidates(other)):
            return other
        return None

    def _candidates(self, path: str) -> Iterator[tuple[dict[str, Route], dict[str, object]]]:
        if path in self._static:
            yield self._static[path], {}
        for pattern, table in self._dynamic.values():
            params = pattern.match(path)
            if params is not None:
                yield table, params


def _as_response(result: object) -> Response:
    """Turn what a handler returned into a Response (by type, from a table)."""
    for cls in type(result).__mro__:
        convert = _RESULTS.get(cls)
        if convert is not None:
            return convert(result)
    raise TypeError("a handler must return a Response, str, bytes, dict, list or a (body, status, headers) "
                    f"tuple, not {type(result).__name__}")


def _from_tuple(result: tuple[Any, ...]) -> Response:
    """Flask's ``(body, status)``, ``(body, headers)`` and ``(body, status, headers)``.

    The tuple's headers replace the body's headers of the same name (so a
    Content-Type given here wins), as Flask does; a Response body is copied,
    never changed, since a handler may return a shared one.
    """
    if len(result) == 3:
        body, status, headers = result
    elif len(result) == 2:
        body, second = result
        # A second item that is a dict or pairs is headers: Flask's own rule.
        status, headers = (None, second) if isinstance(second, (Mapping, list, tuple)) else (second, None)
    else:
        raise TypeError(f"a handler's tuple must be (body, status), (body, headers) or (body, status, headers), "
                        f"not {len(result)} items")
    if status is not None and (type(status) is bool or not isinstance(status, int)):
        raise TypeError(f"a handler's status must be an int such as 201, not {status!r}")
    if isinstance(body, tuple):
        raise TypeError("a handler's tuple cannot hold another tuple as its body")
    response = _as_response(body)
    given = _header_pairs(headers)
    replaced = {name.lower() for name, _ in given}
    kept = [(name, value) for name, value in response.headers if name.lower() not in replaced]
    return Response(response.body, response.status if status is None else status, kept + given)


_RESULTS: dict[type, Callable[[Any], Response]] = {
    Response: lambda r: r,
    str: Response,
    bytes: Response,
    dict: Response.json,
    list: Response.json,
    tuple: _from_tuple,
}


def _moved_to(request: Request, path: str) -> Response:
    """A 308 to app path ``path`` with the request's query string.

    308 (RFC 9110 §15.4.9) keeps the method and body, so a POST lands as a POST.
    """
    location = request.url_for(path)
    if request.query_string:
        # Back to the bytes the client sent (PEP 3333 carries them as latin-1).
        location += "?" + quote(request.query_string.encode("latin-1", "replace"), safe=_URL_SAFE)
    return redirect(location, 308)


class App:
    """A WSGI application that dispatches to handlers by path and method."""

    def __init__(self, routes: Iterable[tuple[str, Handler]] = ()) -> None:
        self.router = Router()
        for path, handler in routes:
            self.add_route(path, handler)

    def add_route(self, path: str, handler: Handler, methods: Iterable[str] | None = None) -> None:
        """Route ``path`` (GET unless ``methods`` says otherwise) to ``handler``."""
        self.router.add(path, handler, methods or ("GET",))

    def route(self, path: str, methods: Iterable[str] | None = None) -> Callable[[Handler], Handler]:
        """Decorator form of ``add_route``; returns the handler unchanged."""
        def register(handler: Handler) -> Handler:
            self.add_route(path, handler, methods)
            return handler
        return register

    def handle(self, request: Request) -> Response:
        """The response for ``request``; handler exceptions other than Response propagate."""
        try:
            route, params = self._match(request)
            return _as_response(route.call(request, params))
        except Response as raised:  # HTTPError, abort() and raised responses
            return raised

    def _match(self, request: Request) -> tuple[Route, dict[str, object]]:
        """The route for ``request``; a 404 whose other slash form is routed becomes a 308 there."""
        try:
            return self.router.match(request.method, request.path)
        except HTTPError as error:
            other = self.router.other_slash_form(request.method, request.path) if error.status == 404 else None
            if other is None:
                raise
            raise _moved_to(request, other) from None

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """The WSGI entry point (PEP 3333).

        An exception from a handler is not caught: the server turns it into
        its 500 page (devserver's shows the traceback).
        """
        request = Request(environ)
        return self.handle(request).send(start_response, head=request.method == "HEAD")


__all__ = ["App", "FileUpload", "HTTPError", "Headers", "MultiDict", "Request", "Response", "Route", "Router",
           "abort", "escape", "redirect"]
