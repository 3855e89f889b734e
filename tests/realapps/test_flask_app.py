"""A Flask project (package, blueprints, app factory, Jinja templates) served by the real devserver command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveServer
from realapp import (
    DEADLINE,
    KeepAliveLoad,
    LiveReloadStream,
    SteadyLoad,
    assert_all_fresh,
    edit,
    get,
    start,
    user_env,
    wait_for_body,
)

FILES = {
    "shop/__init__.py": '''
from flask import Flask


def create_app(title="Shop"):
    app = Flask(__name__)
    app.config["TITLE"] = title
    app.config.from_object("shop.settings")
    from .views import main
    from .api import api
    app.register_blueprint(main)
    app.register_blueprint(api, url_prefix="/api")
    return app
''',
    "shop/views.py": '''
from flask import Blueprint, current_app, render_template

from .pricing import price

main = Blueprint("main", __name__)


@main.route("/")
def index():
    return render_template("index.html", title=current_app.config["TITLE"], greeting="view one", price=price(2))


@main.route("/fragment")
def fragment():
    return "<li>a fragment</li>"
''',
    "shop/settings.py": '''
FOOTER = "settings one"
''',
    "shop/pricing.py": '''
def price(count):
    return count * 10
''',
    "shop/api.py": '''
from flask import Blueprint, jsonify

api = Blueprint("api", __name__)


@api.route("/items")
def items():
    return jsonify(items=["apple"])
''',
    "shop/templates/base.html": '''<!DOCTYPE html>
<html><head><title>{{ title }}</title></head>
<body>{% block body %}{% endblock %}</body></html>
''',
    "shop/templates/index.html": '''{% extends "base.html" %}
{% block body %}<h1>{{ greeting }}</h1><p>template one</p><p>price {{ price }}</p>
<footer>{{ config.FOOTER }}</footer>{% endblock %}
''',
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flaskproject")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip("\n"))
    return root


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator:
    live = start(project, "shop:create_app('Real Shop')")
    yield live
    live.stop()


def test_serves_the_factory_app_with_blueprints_and_live_reload_in_full_pages(server) -> None:
    status, headers, body = get(server, "/")
    assert status == 200 and "<title>Real Shop</title>" in body and "view one" in body
    assert body.index('<script src="/__devserver__/livereload.js" data-page="app"></script>') < body.index("</body>")
    assert int(headers["content-length"]) == len(body.encode())
    assert get(server, "/fragment")[2] == "<li>a fragment</li>"  # a fragment gets no script
    status, headers, body = get(server, "/api/items")
    assert status == 200 and headers["content-type"] == "application/json" and "apple" in body


def test_view_edit_is_served_by_every_worker_with_no_failed_request(server, project: Path) -> None:
    with SteadyLoad(server, "/") as load:
        edit(project / "shop/views.py", "view one", "view two", server)
        wait_for_body(server, "/", "view two")
    assert_all_fresh(server, "/", "view two")
    load.assert_clean()
    assert server.wait_for(r"reload in place \(shop\.views changed\)")
    assert list((project / "shop/__pycache__").glob("views.*.pyc")), "bytecode writing was off"


def test_edit_of_a_module_the_view_imports(server, project: Path) -> None:
    edit(project / "shop/pricing.py", "count * 10", "count * 1000", server)
    wait_for_body(server, "/", "price 2000")
    assert_all_fresh(server, "/", "price 2000")


def test_template_edit_is_served_without_configuration(server, project: Path) -> None:
    edit(project / "shop/templates/index.html", "template one", "template two", server)
    wait_for_body(server, "/", "template two")
    assert_all_fresh(server, "/", "template two")
    edit(project / "shop/templates/base.html", "<title>", "<title>Base2 ", server)
    wait_for_body(server, "/", "Base2 Real Shop")
    assert_all_fresh(server, "/", "Base2 Real Shop")


def test_browser_is_told_to_reload_only_once_the_new_template_answers(server, project: Path) -> None:
    stream = LiveReloadStream(server)
    try:
        edit(project / "shop/templates/index.html", "<p>template", "<p>refreshed template", server)
        stream.wait_app_changed()
        assert "refreshed template" in get(server, "/")[2]  # the page the browser now loads is the new one
    finally:
        stream.close()


def test_settings_change_is_applied_by_a_warm_restart(server, project: Path) -> None:
    mark = len(server.lines)
    with SteadyLoad(server, "/") as load:
        edit(project / "shop/settings.py", "settings one", "settings two", server)
        wait_for_body(server, "/", "settings two")
    assert_all_fresh(server, "/", "settings two")
    load.assert_clean()
    server.wait_for(r"warm restart \(a settings module changed\): 2 new worker\(s\) (forked from the warm template|started), ready",
                    start=mark)


def test_keepalive_clients_lose_no_request_across_restarts_with_one_worker(tmp_path: Path) -> None:
    """``--reload restart --workers 1``: each save replaces the only worker; its keep-alive connections go on."""
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.lstrip("\n"))
    live = LiveServer(["--workers", "1", "--reload", "restart", "shop:create_app('Real Shop')"], tmp_path,
                      user_env()).start(timeout=DEADLINE)
    try:
        with KeepAliveLoad(live, "/") as busy, KeepAliveLoad(live, "/", pause=0.05) as spaced, \
                SteadyLoad(live, "/") as fresh:
            text = "view one"
            for n in range(1, 5):
                mark = len(live.lines)
                edit(tmp_path / "shop/views.py", text, f"view ka{n}", live)
                text = f"view ka{n}"
                wait_for_body(live, "/", text)
                live.wait_for(r"warm restart \(--reload=restart\)", start=mark)
        for client in (busy, spaced, fresh):
            client.assert_clean()
        assert sum(busy.crossed(f"view ka{n - 1}" if n > 1 else "view one", f"view ka{n}") for n in range(1, 5)), \
            "no keep-alive connection outlived a restart"
        assert len({number for number, _, _ in spaced.answers}) == 1, "the server closed a keep-alive connection"
    finally:
        live.stop()
