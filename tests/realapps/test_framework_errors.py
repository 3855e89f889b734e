"""A view that raises, and a module that fails to import, under Flask, Bottle, Falcon and ``/name.py``.

Each framework's exception reaches devserver's 500 page with the view's own
frame (devmode.py), where the framework would answer its bare 500; an
import error page shows the user's frames, none of the server's.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveServer
from realapp import edit, get, start, user_env

FLASK_APP = '''
from flask import Flask

from . import views


def create_app(propagate=None):
    app = Flask(__name__)
    if propagate is not None:
        app.config["PROPAGATE_EXCEPTIONS"] = propagate
    app.register_blueprint(views.main)
    return app
'''

FLASK_VIEWS = '''
from flask import Blueprint

main = Blueprint("main", __name__)


@main.route("/")
def index():
    return "flask index"


@main.route("/broken/<int:count>")
def broken(count):
    basket = ["pear"] * count
    raise KeyError(f"no apple among {len(basket)}")
'''

BOTTLE_APP = '''
import bottle

app = bottle.Bottle()


@app.route("/broken")
def broken():
    crate = "bottle crate"
    raise LookupError(f"empty {crate}")
'''

FALCON_APP = '''
import falcon


class Broken:
    def on_get(self, req, resp):
        drawer = "falcon drawer"
        raise RuntimeError(f"stuck {drawer}")


app = falcon.App()
app.add_route("/broken", Broken())
'''


def devserver_500(body: str, exception: str, file: str, function: str) -> None:
    """``body`` is devserver's 500 page for ``exception``, whose raising frame is ``function`` in ``file``."""
    text = html.unescape(body)
    assert "The application raised an exception." in text and "<address>devserver</address>" in text, text[:400]
    assert f'<h2 class="exc">{exception}</h2>' in text
    first = text.index('<section class="frame">')  # the raising frame comes first
    heading = text[first:text.index("</h3>", first)]
    assert f"{file}</code>, line " in heading and heading.endswith(f"in <code>{function}</code>"), heading


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip())
    return root


@pytest.fixture(scope="module")
def flask_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("flaskerrors"), {"shop/__init__.py": FLASK_APP, "shop/views.py": FLASK_VIEWS})


@pytest.fixture(scope="module")
def flask_server(flask_project: Path) -> Iterator[LiveServer]:
    live = start(flask_project, "shop:create_app()")
    yield live
    live.stop()


def test_a_flask_view_that_raises_gets_devservers_page_with_its_frame(flask_server: LiveServer) -> None:
    status, _, body = get(flask_server, "/broken/3")
    assert status == 500
    devserver_500(body, "KeyError: 'no apple among 3'", "shop/views.py", "broken")
    assert "<th>basket</th><td><code>[&#x27;pear&#x27;, &#x27;pear&#x27;, &#x27;pear&#x27;]</code>" in body


def test_a_flask_app_that_chose_not_to_propagate_keeps_its_own_page(tmp_path: Path) -> None:
    project = write(tmp_path, {"shop/__init__.py": FLASK_APP, "shop/views.py": FLASK_VIEWS})
    server = start(project, "shop:create_app(propagate=False)")
    try:
        status, _, body = get(server, "/broken/1")
        assert status == 500 and "<h1>Internal Server Error</h1>" in body and "<address>devserver" not in body
    finally:
        server.stop()


@pytest.mark.parametrize(("source", "exception", "function"), [
    (BOTTLE_APP, "LookupError: empty bottle crate", "broken"),
    (FALCON_APP, "RuntimeError: stuck falcon drawer", "on_get"),
], ids=["bottle", "falcon"])
def test_bottle_and_falcon_views_that_raise_get_devservers_page(tmp_path: Path, source: str, exception: str,
                                                               function: str) -> None:
    project = write(tmp_path, {"app.py": source})
    server = start(project, "app:app")
    try:
        status, _, body = get(server, "/broken")
        assert status == 500
        devserver_500(body, exception, "app.py", function)
    finally:
        server.stop()


def assert_user_frames_only(body: str, file: Path, line: int) -> None:
    text = html.unescape(body)
    assert f"<code>{file}</code>, line {line}, in <code><module></code>" in text, text[:1500]
    for server_frame in ("dynamic.py", "project.py", "appspec.py", "<frozen importlib", "importlib/__init__.py"):
        assert server_frame not in text.split("<h2>Full traceback</h2>")[0].split("<pre>")[0], server_frame


@pytest.mark.parametrize(("broken", "exception"), [
    ("raise RuntimeError('views refuse to load')", "RuntimeError: views refuse to load"),
    ("def later(:\n    pass", "SyntaxError: invalid syntax"),
], ids=["raise", "syntax-error"])
def test_an_app_module_that_fails_to_import_shows_its_own_frames(flask_server: LiveServer, flask_project: Path,
                                                                 broken: str, exception: str) -> None:
    views = flask_project / "shop/views.py"
    edit(views, '\n\n@main.route("/broken', f'\n\n{broken}\n\n\n@main.route("/broken', flask_server)
    line = views.read_text().splitlines().index(broken.splitlines()[0]) + 1
    try:
        status, _, body = get(flask_server, "/")
        assert status == 500 and exception in html.unescape(body)
        assert "Module &#x27;shop.views&#x27; failed to import." in body
        assert_user_frames_only(body, views, line)
    finally:
        mark = len(flask_server.lines)
        views.write_text(FLASK_VIEWS.lstrip())
        flask_server.wait_for(r"^reloaded ", timeout=60, start=mark)
    assert get(flask_server, "/")[2] == "flask index"


def test_a_dynamic_module_that_fails_to_import_shows_its_own_frames(tmp_path: Path) -> None:
    dynamic = tmp_path / "dynamic"
    helper = write(dynamic, {"helper.py": "VALUE = 1\nraise ValueError('helper is broken')\n"}) / "helper.py"
    (dynamic / "page.py").write_text("import helper\n\n\ndef application(environ, start_response):\n    pass\n")
    (dynamic / "typo.py").write_text("def application(environ, start_response)\n    pass\n")
    (tmp_path / "html_page").mkdir()
    server = LiveServer(["--workers", "1"], tmp_path, user_env()).start()
    try:
        status, _, body = get(server, "/page.py")
        assert status == 500 and "ValueError: helper is broken" in html.unescape(body)
        assert_user_frames_only(body, dynamic / "page.py", 1)  # the importing line, then the helper's
        assert_user_frames_only(body, helper, 2)
        status, _, body = get(server, "/typo.py")
        assert status == 500 and "SyntaxError: expected &#x27;:&#x27;" in body
        assert_user_frames_only(body, dynamic / "typo.py", 1)
    finally:
        server.stop()

