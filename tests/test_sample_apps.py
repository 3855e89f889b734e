"""The sample apps in dynamic/, each called under wsgiref's validator."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest
from test_router import call

DYNAMIC = Path(__file__).resolve().parent.parent / "dynamic"


def load(name: str) -> ModuleType:
    """Import ``dynamic/<name>.py`` by path (dynamic/ is not a package).

    A private module name keeps ``site`` from clashing with the stdlib's.
    """
    spec = importlib.util.spec_from_file_location(f"_sample_{name}", DYNAMIC / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site() -> ModuleType:
    return load("site")


def test_mytime_answers_the_time_as_plain_text() -> None:
    result = call(load("mytime").application, "/anything")
    assert result.status == 200
    assert result.header("Content-Type") == "text/plain; charset=utf-8"
    assert re.match(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", result.body)
    assert result.header("Content-Length") == str(len(result.body))


def test_myhello_is_a_plain_function_returning_a_string() -> None:
    assert isinstance(load("myhello").application(), str)


def test_site_exposes_application(site: ModuleType) -> None:
    assert site.application is site.app


@pytest.mark.parametrize("script_name", ["", "/site.py"])
def test_site_index_links_carry_the_script_name(site: ModuleType, script_name: str) -> None:
    result = call(site.app, "/" if not script_name else "", script_name=script_name)
    assert result.status == 200
    for path in ("/hello/world", "/items/1", "/form", "/api/time"):
        assert f'href="{script_name}{path}"'.encode() in result.body


@pytest.mark.parametrize("path, status, text", [
    ("/hello/%3Cb%3E", 200, b"Hello, %3Cb%3E!"),
    ("/hello/<b>", 200, b"Hello, &lt;b&gt;!"),  # escaped, never markup
    ("/items/2", 200, b"kettle"),
    ("/items/99", 404, b"There is no item 99."),
    ("/items/two", 404, b"404 Not Found"),
    ("/form", 200, b"<form method=\"post\""),
])
def test_site_pages(site: ModuleType, path: str, status: int, text: bytes) -> None:
    result = call(site.app, path)
    assert result.status == status
    assert text in result.body


def test_site_form_post_redirects_and_remembers_the_name(site: ModuleType) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    posted = call(site.app, "/form", method="POST", body=b"name=J%C3%B6rg&message=hi", headers=form,
                  script_name="/site.py")
    assert posted.status == 303
    assert posted.header("Location") == "/site.py/form?sent=1"
    cookie = posted.header("Set-Cookie") or ""
    assert cookie.startswith("visitor=J%C3%B6rg;")
    page = call(site.app, "/form", query="sent=1", headers={"Cookie": cookie.split(";")[0]})
    assert "Welcome back, Jörg.".encode() in page.body and b"Thanks" in page.body
    assert call(site.app, "/form", method="POST", body=b"name=", headers=form).status == 400


def test_site_api(site: ModuleType) -> None:
    now = call(site.app, "/api/time")
    assert now.header("Content-Type") == "application/json"
    assert set(json.loads(now.body)) == {"epoch", "iso"}
    echo = call(site.app, "/api/echo", method="POST", body=b'{"x": [1, "\xc3\xa9"]}', query="a=1&a=2",
                headers={"Content-Type": "application/json"})
    assert json.loads(echo.body) == {"echo": {"x": [1, "é"]}, "args": {"a": ["1", "2"]}}
    assert call(site.app, "/api/echo", method="POST", body=b"{nope").status == 400
    assert call(site.app, "/api/echo").status == 405
