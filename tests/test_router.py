"""Tests for devserver.router, calling apps directly under wsgiref's validator."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest
from conftest import http_get

from devserver.handlers.livereload import APP_SCRIPT_TAG
from devserver.router import App, HTTPError, Request, Response, abort, escape, redirect

README = Path(__file__).resolve().parent.parent / "README.md"


@dataclass(frozen=True)
class Result:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


def environ_for(path: str = "/", method: str = "GET", body: bytes = b"", query: str = "",
                headers: dict[str, str] | None = None, script_name: str = "") -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": script_name,
                               "QUERY_STRING": query, "wsgi.input": io.BytesIO(body)}
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    setup_testing_defaults(environ)
    return environ


def call(app: Any, path: str = "/", **kwargs: Any) -> Result:
    """Run ``app`` under the PEP 3333 validator and collect its response."""
    return run(app, environ_for(path, **kwargs))


def run(app: Any, environ: dict[str, Any]) -> Result:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    iterable = validator(app)(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        iterable.close()
    return Result(int(seen["status"].split()[0]), seen["headers"], body)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, str, bytes]], boundary: str = "b0undary") -> bytes:
    chunks = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                      + value.encode() + b"\r\n")
    for name, (filename, ctype, data) in files.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                      f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


@pytest.fixture
def app() -> App:
    app = App()

    @app.route("/")
    def index(request: Request) -> str:
        return "<h1>home</h1>"

    @app.route("/user/<name>")
    def user(request: Request, name: str) -> dict[str, Any]:
        return {"name": name}

    @app.route("/items/<id:int>", methods=["GET", "POST"])
    def item(request: Request, id: int) -> dict[str, Any]:
        return {"id": id, "type": type(id).__name__, "method": request.method}

    @app.route("/price/<x:float>")
    def price(x: float) -> dict[str, Any]:  # no request parameter: only the path's
        return {"x": x, "type": type(x).__name__}

    @app.route("/files/<p:path>")
    def files(request: Request, p: str) -> str:
        return p

    @app.route("/echo", methods=["POST"])
    def echo(request: Request) -> Response:
        payload = {"form": {k: request.form.getlist(k) for k in request.form},
                   "files": {k: [f.filename, f.content_type, f.data.hex()] for k, f in request.files.items()},
                   "json": request.json if request.content_type == "application/json" else None}
        return Response.json(payload)

    @app.route("/args")
    def args(request: Request) -> dict[str, Any]:
        return {"q": request.args.get("q"), "tags": request.args.getlist("tag"),
                "missing": request.args.get("missing", "default"), "blank": request.args.get("blank")}

    @app.route("/teapot")
    def teapot() -> str:
        raise HTTPError(418, "short and stout")

    @app.route("/abort")
    def aborts() -> str:
        abort(403, "<no>")

    @app.route("/raised")
    def raised() -> str:
        raise Response("made", status=201, headers={"X-Made": "yes"}, content_type="text/plain")

    @app.route("/go")
    def go(request: Request) -> Response:
        return redirect(request.url_for("/user/ü x"))

    @app.route("/cookies")
    def cookies(request: Request) -> Response:
        response = Response.json(request.cookies)
        response.set_cookie("session", "abc123", max_age=60)
        response.delete_cookie("old")
        return response

    @app.route("/headers")
    def headers(request: Request) -> dict[str, Any]:
        return {"agent": request.headers.get("user-agent"), "same": request.headers["USER-AGENT"],
                "ctype": request.headers.get("Content-Type")}

    @app.route("/bytes")
    def raw() -> bytes:
        return b"\x00\x01"

    @app.route("/list")
    def listing() -> list[int]:
        return [1, 2, 3]

    @app.route("/empty")
    def empty() -> Response:
        return Response(status=204)

    @app.route("/where")
    def where(request: Request) -> dict[str, Any]:
        return {"path": request.path, "script": request.script_name, "link": request.url_for("/x", a="1 2")}

    @app.route("/boom")
    def boom() -> str:
        return str(1 / 0)

    @app.route("/nothing")
    def nothing() -> None:
        return None

    return app


def body_json(result: Result) -> Any:
    assert result.header("Content-Type") == "application/json"
    return json.loads(result.body)


def test_static_route_is_html_with_content_length(app: App) -> None:
    result = call(app, "/")
    assert (result.status, result.body) == (200, b"<h1>home</h1>")
    assert result.header("Content-Type") == "text/html; charset=utf-8"
    assert result.header("Content-Length") == str(len(result.body))


@pytest.mark.parametrize("path, expected", [
    ("/user/alice", {"name": "alice"}),
    ("/user/%C3%A9", {"name": "%C3%A9"}),  # the server decodes, not the router
    ("/user/\xc3\xa9", {"name": "é"}),  # PEP 3333 latin-1 "bytes as str" → UTF-8
    ("/items/42", {"id": 42, "type": "int", "method": "GET"}),
    ("/items/-7", {"id": -7, "type": "int", "method": "GET"}),
    ("/price/2.5", {"x": 2.5, "type": "float"}),
    ("/price/3", {"x": 3.0, "type": "float"}),
])
def test_typed_parameters(app: App, path: str, expected: dict[str, Any]) -> None:
    result = call(app, path)
    assert result.status == 200
    assert body_json(result) == expected


def test_path_parameter_takes_slashes(app: App) -> None:
    assert call(app, "/files/a/b/c.txt").body == b"a/b/c.txt"


@pytest.mark.parametrize("path", ["/items/abc", "/items/1.5", "/items/", "/price/x", "/user/a/b", "/nowhere",
                                  "/files/"])
def test_no_match_is_404(app: App, path: str) -> None:
    result = call(app, path)
    assert result.status == 404
    assert b"404 Not Found" in result.body
    assert result.header("Content-Length") == str(len(result.body))


def test_wrong_method_is_405_with_allow(app: App) -> None:
    result = call(app, "/items/1", method="DELETE")
    assert result.status == 405
    assert result.header("Allow") == "GET, HEAD, POST"
    assert call(app, "/echo", method="GET").header("Allow") == "POST"
    assert call(app, "/", method="OPTIONS").status == 405


def test_post_to_a_multi_method_route(app: App) -> None:
    assert body_json(call(app, "/items/5", method="POST"))["method"] == "POST"


def test_head_is_answered_from_get(app: App) -> None:
    get = call(app, "/user/bob")
    head = call(app, "/user/bob", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.header("Content-Length") == get.header("Content-Length") == str(len(get.body))
    assert head.header("Content-Type") == get.header("Content-Type")


def test_explicit_head_route_wins() -> None:
    app = App()
    app.add_route("/x", lambda: "get")
    app.add_route("/x", lambda: Response(headers={"X-Head": "1"}), methods=["HEAD"])
    assert call(app, "/x", method="HEAD").header("X-Head") == "1"


@pytest.mark.parametrize("path, status, text", [
    ("/teapot", 418, b"short and stout"),
    ("/abort", 403, b"&lt;no&gt;"),  # messages are escaped
])
def test_raised_errors_render_their_status(app: App, path: str, status: int, text: bytes) -> None:
    result = call(app, path)
    assert result.status == status
    assert text in result.body
    assert result.header("Content-Type") == "text/html; charset=utf-8"


def test_a_raised_response_is_sent(app: App) -> None:
    result = call(app, "/raised")
    assert (result.status, result.body, result.header("X-Made")) == (201, b"made", "yes")
    assert result.header("Content-Type") == "text/plain"


def test_redirect_quotes_its_location(app: App) -> None:
    result = call(app, "/go", script_name="/site.py")
    assert result.status == 302
    assert result.header("Location") == "/site.py/user/%C3%BC%20x"
    assert redirect("/a\r\nSet-Cookie: x=1", 303).get_header("Location") == "/a%0D%0ASet-Cookie:%20x=1"


def test_header_values_cannot_carry_line_breaks() -> None:
    with pytest.raises(ValueError):
        Response().set_header("X-Bad", "a\r\nb")


def test_cookies_set_and_read(app: App) -> None:
    result = call(app, "/cookies", headers={"Cookie": 'session=old; bad{name=1; theme="dark mode"; lang=en'})
    assert body_json(result) == {"session": "old", "theme": "dark mode", "lang": "en"}
    session, old = result.all("Set-Cookie")
    assert session.startswith("session=abc123;")
    for attribute in ("Max-Age=60", "Path=/", "HttpOnly", "SameSite=Lax"):
        assert attribute in session
    assert "Secure" not in session
    assert old.startswith("old=") and "Max-Age=0" in old


def test_no_cookie_header_is_an_empty_dict(app: App) -> None:
    assert body_json(call(app, "/cookies")) == {}


def test_query_args(app: App) -> None:
    result = call(app, "/args", query="q=caf%C3%A9&tag=a&tag=b&blank=")
    assert body_json(result) == {"q": "café", "tags": ["a", "b"], "missing": "default", "blank": ""}


def test_headers_are_case_insensitive(app: App) -> None:
    result = call(app, "/headers", headers={"User-Agent": "pytest", "Content-Type": "text/plain"})
    assert body_json(result) == {"agent": "pytest", "same": "pytest", "ctype": "text/plain"}


def test_urlencoded_form(app: App) -> None:
    body = b"name=J%C3%B6rg&tag=a&tag=b&empty="
    result = call(app, "/echo", method="POST", body=body,
                  headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert body_json(result)["form"] == {"name": ["Jörg"], "tag": ["a", "b"], "empty": [""]}


def test_multipart_form_with_a_binary_file(app: App) -> None:
    data = bytes(range(256)) + b"\r\n--b0undar\r\n"
    body = multipart({"title": "héllo\r\nworld", "blank": ""},
                     {"upload": ("a b.bin", "application/octet-stream", data)})
    result = call(app, "/echo", method="POST", body=body,
                  headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    echoed = body_json(result)
    assert echoed["form"] == {"title": ["héllo\r\nworld"], "blank": [""]}
    assert echoed["files"] == {"upload": ["a b.bin", "application/octet-stream", data.hex()]}


def test_multipart_without_a_boundary_is_400(app: App) -> None:
    result = call(app, "/echo", method="POST", body=b"junk", headers={"Content-Type": "multipart/form-data"})
    assert result.status == 400


@pytest.mark.parametrize("body, status, expected", [
    (b'{"a": [1, 2], "b": "\xc3\xa9"}', 200, {"a": [1, 2], "b": "é"}),
    (b"[1, 2", 400, None),
    (b"\xff\xfe\x00", 400, None),
])
def test_json_body(app: App, body: bytes, status: int, expected: Any) -> None:
    result = call(app, "/echo", method="POST", body=body, headers={"Content-Type": "application/json"})
    assert result.status == status
    if status == 200:
        assert body_json(result)["json"] == expected
    else:
        assert b"Invalid JSON" in result.body


def test_empty_json_body_is_none() -> None:
    assert Request(environ_for("/", method="POST", headers={"Content-Type": "application/json"})).json is None


def test_body_is_never_read_past_content_length() -> None:
    environ = environ_for("/", method="POST", body=b"hello")
    environ["wsgi.input"] = io.BytesIO(b"hello--next request--")
    request = Request(environ)
    assert request.body == b"hello"
    assert environ["wsgi.input"].tell() == 5
    assert request.body == b"hello"  # read once, kept


def test_body_without_content_length_is_empty_unless_input_terminated() -> None:
    environ = environ_for("/", method="POST")
    environ["wsgi.input"] = io.BytesIO(b"chunked body")
    assert Request(dict(environ)).body == b""
    environ["wsgi.input_terminated"] = True
    assert Request(environ).body == b"chunked body"


def test_a_declared_body_over_the_limit_is_413(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Request, "max_body", 4)
    result = call(app, "/echo", method="POST", body=b"[1, 2, 3]", headers={"Content-Type": "application/json"})
    assert result.status == 413


@pytest.mark.parametrize("path, ctype, body", [
    ("/bytes", "text/html; charset=utf-8", b"\x00\x01"),
    ("/list", "application/json", b"[1,2,3]"),
])
def test_return_types(app: App, path: str, ctype: str, body: bytes) -> None:
    result = call(app, path)
    assert (result.header("Content-Type"), result.body) == (ctype, body)


def test_204_has_no_body_headers(app: App) -> None:
    result = call(app, "/empty")
    assert (result.status, result.body) == (204, b"")
    assert result.header("Content-Type") is None and result.header("Content-Length") is None


def test_mounted_under_a_script_name(app: App) -> None:
    result = call(app, "/where", script_name="/site.py")
    assert body_json(result) == {"path": "/where", "script": "/site.py", "link": "/site.py/x?a=1+2"}
    assert call(app, "", script_name="/site.py").body == b"<h1>home</h1>"  # empty PATH_INFO is "/"


def test_a_list_of_pairs_and_zero_argument_handlers() -> None:
    def hello() -> str:
        return "Hello!"

    def now(request: Request) -> str:
        return request.method

    app = App([("/hello", hello), ("/time", now)])
    assert call(app, "/hello").body == b"Hello!"
    assert call(app, "/time").body == b"GET"
    assert call(app, "/hello", method="POST").status == 405


def test_handler_exceptions_propagate(app: App) -> None:
    # Not swallowed: the server shows its 500 page with this traceback.
    with pytest.raises(ZeroDivisionError):
        call(app, "/boom")
    with pytest.raises(TypeError, match="must return"):
        call(app, "/nothing")


@pytest.mark.parametrize("rule", ["/x/<id:number>", "/x/<a>/<a>", "no-slash"])
def test_bad_rules_fail_at_registration(rule: str) -> None:
    with pytest.raises(ValueError):
        App().add_route(rule, lambda: "")


def test_dynamic_routes_are_tried_in_insertion_order() -> None:
    app = App()
    app.add_route("/p/<n:int>", lambda n: "int")
    app.add_route("/p/<s>", lambda s: "str")
    app.add_route("/p/me", lambda: "static")
    assert [call(app, p).body for p in ("/p/1", "/p/x", "/p/me")] == [b"int", b"str", b"static"]


# Flask's and bottle's tuple returns.

SHARED = Response("shared", headers={"X-Old": "1", "X-Keep": "k"})


@pytest.fixture
def tuples() -> App:
    app = App()
    results: dict[str, Any] = {
        "/status": ("made", 201),
        "/json-status": ({"a": 1}, 201),
        "/status-dict": ("x", 202, {"X-A": "1"}),
        "/status-pairs": ("x", 202, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]),
        "/headers-only": ("plain", {"Content-Type": "text/plain; charset=utf-8"}),
        "/pairs-only": (b"\x00", [("Content-Type", "application/octet-stream")]),
        "/response": (SHARED, 201, {"X-Old": "2"}),
        "/no-content": ("dropped", 204),
    }
    for path, result in results.items():
        app.add_route(path, returning(result))
    return app


def returning(result: Any) -> Any:
    return lambda: result


@pytest.mark.parametrize("path, status, ctype, body", [
    ("/status", 201, "text/html; charset=utf-8", b"made"),
    ("/json-status", 201, "application/json", b'{"a":1}'),
    ("/status-dict", 202, "text/html; charset=utf-8", b"x"),
    ("/headers-only", 200, "text/plain; charset=utf-8", b"plain"),
    ("/pairs-only", 200, "application/octet-stream", b"\x00"),
    ("/response", 201, "text/html; charset=utf-8", b"shared"),
])
def test_tuple_returns_set_status_and_headers(tuples: App, path: str, status: int, ctype: str, body: bytes) -> None:
    result = call(tuples, path)
    assert (result.status, result.all("Content-Type"), result.body) == (status, [ctype], body)
    assert result.header("Content-Length") == str(len(body))


def test_tuple_headers_replace_the_same_name_and_keep_repeats(tuples: App) -> None:
    assert call(tuples, "/status-dict").header("X-A") == "1"
    assert call(tuples, "/status-pairs").all("Set-Cookie") == ["a=1", "b=2"]
    response = call(tuples, "/response")
    assert (response.all("X-Old"), response.header("X-Keep")) == (["2"], "k")
    assert (SHARED.status, SHARED.get_header("X-Old")) == (200, "1")  # the handler's object is not changed


def test_tuple_with_a_no_body_status(tuples: App) -> None:
    result = call(tuples, "/no-content")
    assert (result.status, result.body, result.header("Content-Type")) == (204, b"", None)
    assert call(tuples, "/status", method="HEAD").status == 201


@pytest.mark.parametrize("result, message", [
    (("x",), "must be"),
    (("x", 201, {}, 1), "must be"),
    (("x", "201"), "status must be an int"),
    (("x", True), "status must be an int"),
    (("x", 201, [("X-A",)]), "pairs"),
    (("x", 201, {"X-A": 1}), "pairs"),
    ((("x", 201), 202), "another tuple"),
])
def test_malformed_tuples_fail_with_a_clear_error(result: tuple[Any, ...], message: str) -> None:
    app = App([("/", lambda: result)])
    with pytest.raises(TypeError, match=message):
        call(app, "/")


# Escaping what came from a request.

@pytest.mark.parametrize("value, expected", [
    ("<script>alert('x')</script>", "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"),
    ('a "b" & c', "a &quot;b&quot; &amp; c"),
    (42, "42"),
    (None, "None"),
])
def test_escape(value: object, expected: str) -> None:
    assert escape(value) == expected


def readme_app() -> App:
    """The app of README's "Writing apps" example, run as a user would copy it."""
    section = README.read_text().split("## Writing apps", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "README's Writing apps section has no Python example"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)
    return namespace["app"]


def test_readme_example_escapes_the_url_segment() -> None:
    result = call(readme_app(), "/hello/<img src=x onerror=alert(1)>")
    assert result.status == 200
    assert b"<img" not in result.body and b"&lt;img src=x onerror=alert(1)&gt;" in result.body
    assert call(readme_app(), "/api/items/7").body == b'{"id":7,"method":"GET"}'


# Strict slashes: the other form of a routed path is redirected to, as Werkzeug does.

@pytest.fixture
def slashes() -> App:
    app = App()
    app.add_route("/users/<id>", lambda id: f"user {id}")
    app.add_route("/users/", lambda: "all users", methods=["GET", "POST"])
    app.add_route("/both", lambda: "no slash")
    app.add_route("/both/", lambda: "slash")
    app.add_route("/<name:path>.txt", lambda name: name)
    return app


@pytest.mark.parametrize("path, method, query, script_name, location", [
    ("/users/1/", "GET", "", "", "/users/1"),
    ("/users", "GET", "", "", "/users/"),
    ("/users", "POST", "", "", "/users/"),  # 308 keeps the method, so a form post still lands
    ("/users/1/", "HEAD", "", "", "/users/1"),
    ("/users/1/", "GET", "a=1&b=%C3%BC&c", "", "/users/1?a=1&b=%C3%BC&c"),
    ("/users/1/", "GET", "q=\xc3\xbc", "", "/users/1?q=%C3%BC"),  # raw UTF-8 bytes, latin-1 in the environ
    ("/users/\xc3\xbc x/", "GET", "", "", "/users/%C3%BC%20x"),
    ("/users/1/", "GET", "", "/site.py", "/site.py/users/1"),
])
def test_other_slash_form_is_a_308(slashes: App, path: str, method: str, query: str, script_name: str,
                                   location: str) -> None:
    result = call(slashes, path, method=method, query=query, script_name=script_name)
    assert (result.status, result.header("Location")) == (308, location)
    link = f'<a href="{escape(location)}">{escape(location)}</a>\n'.encode()
    assert result.body == (b"" if method == "HEAD" else link)


def test_the_redirect_target_answers(slashes: App) -> None:
    location = call(slashes, "/users/7/").header("Location")
    assert location is not None and call(slashes, location).body == b"user 7"


@pytest.mark.parametrize("path, method, status, body", [
    ("/both", "GET", 200, b"no slash"),  # both forms routed: each answers itself
    ("/both/", "GET", 200, b"slash"),
    ("/users/1/", "POST", 404, None),  # the other form has no POST route: nothing to redirect to
    ("/users/1//", "GET", 404, None),
    ("//evil.txt/", "GET", 404, None),  # "//evil.txt" is routed, but would be another site in a Location
    ("/", "GET", 404, None),
])
def test_no_redirect_unless_only_the_other_form_is_routed(slashes: App, path: str, method: str, status: int,
                                                         body: bytes | None) -> None:
    result = call(slashes, path, method=method)
    assert (result.status, result.header("Location")) == (status, None)
    assert body is None or result.body == body


# Through a live devserver: live reload touches only whole documents, redirects carry SCRIPT_NAME.

PARTIALS_APP = """
from devserver.router import App

application = App()
application.add_route("/page", lambda: "<!DOCTYPE html><html><body><p>page</p></body></html>")
application.add_route("/row", lambda: "<tr><td>htmx row</td></tr>")
application.add_route("/text", lambda: "OK")
application.add_route("/users/<id>", lambda id: id)
"""


def test_live_reload_script_only_in_whole_documents(site: Path, server_factory: Any) -> None:
    (site / "dynamic" / "partials.py").write_text(PARTIALS_APP)
    (site / "html_page" / "row.html").write_text("<li>static fragment</li>\n")
    server = server_factory("--workers", "1")
    status, headers, body = http_get(server, "/partials.py/page")
    assert status == 200 and body.count(APP_SCRIPT_TAG) == 1 and body.index(APP_SCRIPT_TAG) < body.index(b"</body>")
    assert headers["content-length"] == str(len(body))
    for path, expected in [("/partials.py/row", b"<tr><td>htmx row</td></tr>"), ("/partials.py/text", b"OK"),
                           ("/row.html", b"<li>static fragment</li>\n")]:
        status, headers, body = http_get(server, path)
        assert (status, body) == (200, expected), path
        assert headers["content-type"].startswith("text/html") and headers["content-length"] == str(len(body))
    status, headers, _ = http_get(server, "/partials.py/users/1/?q=1")
    assert (status, headers["location"]) == (308, "/partials.py/users/1?q=1")


def test_apps_written_for_0_1_import_the_router_as_devserver_frame() -> None:
    import devserver.frame
    import devserver.router

    assert devserver.frame.App is App and devserver.frame.__all__ == devserver.router.__all__
    assert all(getattr(devserver.frame, name) is getattr(devserver.router, name) for name in devserver.router.__all__)
