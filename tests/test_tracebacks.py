"""Rich error reports (devserver/tracebacks.py): the 500 page of a real server, and the report itself."""

from __future__ import annotations

import io
import pickle
import re
from typing import Any

import pytest
from conftest import LiveServer, raw

from devserver.apps.dynamic import DynamicModules, ImportFailed
from devserver.debug.tracebacks import MASK, report, report_html, report_text, short_repr
from devserver.ipc.reports import ErrorReport


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("password", "hunter2", MASK),
    ("api_token", "t", MASK),
    ("SECRET_KEY", "k", MASK),
    ("session_id", 1, MASK),
    ("authorization", "Basic x", MASK),
    ("items", list(range(100)), "[0, 1, 2, 3, 4, 5, 6, 7, ...]"),
    ("headers", {"Cookie": "a=1", "Accept": "*/*"}, f"{{'Accept': '*/*', 'Cookie': {MASK}}}"),
    ("count", 3, "3"),
])
def test_locals_are_shortened_and_secrets_masked(name: str, value: Any, shown: str) -> None:
    assert short_repr(name, value) == shown


def test_long_values_are_shortened_and_a_broken_repr_does_not_break_the_report() -> None:
    shown = short_repr("name", "x" * 500)
    assert len(shown) <= 120 and "..." in shown

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert short_repr("x", Broken()).startswith("<Broken")


def _raise(environ: dict[str, Any]) -> None:
    token = "".join(["ab", "c"])  # noqa: F841 - a local the report must mask
    depth = 2  # noqa: F841
    raise ValueError("bad value")


def test_report_keeps_frames_source_locals_request_and_pickles() -> None:
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/f?x=1", "HTTP_AUTHORIZATION": "Be" + "arer zzz",
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.input": io.BytesIO(b"user=a&password=b")}
    try:
        _raise(environ)
    except ValueError as exc:
        r = report(exc, environ)
    assert r.exception == "ValueError: bad value"
    last = r.frames[-1]
    assert last.function == "_raise" and ("token", MASK) in last.locals and ("depth", "2") in last.locals
    assert any("raise ValueError" in text for n, text in last.source if n == last.lineno)
    assert (r.method, r.target) == ("POST", "/f?x=1")
    assert ("Authorization", MASK) in r.headers and r.form == (("user", "a"), ("password", MASK))
    assert pickle.loads(pickle.dumps(r)) == r  # it travels in a RequestEvent
    text = report_text(r)
    assert "→" in text and "token = ********" in text and "Bearer" not in text
    html = report_html(r)
    assert "<script" not in html and "Bearer" not in html and "abc" not in html


def test_500_page_starts_at_the_app_and_masks_secrets(server: LiveServer) -> None:
    response = raw(server, b"GET /boom_locals.py?missing HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid=s3cr3t\r\n"
                           b"X-Password: hunter2\r\nConnection: close\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    page = body.decode()
    assert "KeyError: &#x27;missing&#x27;" in page
    frames = re.findall(r'<section class="frame"><h3><code>([^<]*)</code>, line (\d+), in <code>(\w+)</code>', page)
    assert [(f.rsplit("/", 1)[-1], fn) for f, _, fn in frames] == [("boom_locals.py", "lookup"),
                                                                    ("boom_locals.py", "application")]
    assert re.search(r"\d+ server frames? folded", page)
    assert "<th>password</th><td><code>********</code>" in page and "hunter2" not in page
    assert "<th>count</th><td><code>1000</code>" in page
    assert "s3cr3t" not in page and "<th>Cookie</th><td>********</td>" in page
    assert "<code>GET /boom_locals.py?missing</code>" in page
    assert 'class="cur"><code>    return {&quot;known&quot;: count}[name]</code>' in page
    # The server lives on.
    assert raw(server, b"GET /one_k.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")



def _import_report(tmp_path: Any, sources: dict[str, str], name: str) -> ErrorReport:
    """The report of importing ``name`` from a dynamic folder holding ``sources`` (DynamicModules.load)."""
    import sys

    for module, text in sources.items():
        (tmp_path / f"{module}.py").write_text(text)
    modules = DynamicModules(str(tmp_path))
    try:
        modules.load(name)
    except ImportFailed as exc:
        assert exc.report is not None
        return exc.report
    finally:
        sys.path.remove(modules.folder)
        for module in sources:
            sys.modules.pop(module, None)
    raise AssertionError(f"{name} imported")


def test_an_import_report_holds_the_users_frames_only(tmp_path: Any) -> None:
    r = _import_report(tmp_path, {"outer_mod": "import inner_mod\n", "inner_mod": "X = 1\nraise KeyError('inner')\n"},
                       "outer_mod")
    assert [(f.filename.rsplit("/", 1)[-1], f.lineno) for f in r.frames] == [("outer_mod.py", 1), ("inner_mod.py", 2)]
    assert r.exception == "KeyError: 'inner'" and r.folded > 0  # dynamic.py's frame and importlib's, folded
    assert r.frames[-1].source == ((1, "X = 1"), (2, "raise KeyError('inner')"))


def test_an_import_report_of_a_syntax_error_ends_at_the_line_that_does_not_compile(tmp_path: Any) -> None:
    r = _import_report(tmp_path, {"uses_typo": "import typo_mod\n", "typo_mod": "A = 1\ndef f(:\n    pass\n"},
                       "uses_typo")
    assert [(f.filename.rsplit("/", 1)[-1], f.lineno, f.function) for f in r.frames] == [
        ("uses_typo.py", 1, "<module>"), ("typo_mod.py", 2, "<module>")]
    assert r.exception == "SyntaxError: invalid syntax" and (2, "def f(:") in r.frames[-1].source
    assert "importlib" not in report_text(r) and "dynamic.py" not in report_text(r)
