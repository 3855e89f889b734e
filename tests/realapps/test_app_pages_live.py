"""Pages served by a real Flask and a real Django project, open in headless Chromium, follow the saves by themselves.

Each project is built in a temporary folder and served by the devserver
command (2 workers).  A tab shows a page the APP made; then a template, a
view, a module that does not compile (the overlay shows over the page, which
stays; the fix removes it and the page reloads) and a stylesheet are saved,
and the tab is watched until it shows the change with nobody reloading it.
A stylesheet save is swapped in the same document and touches no Python
process: the Flask app is not built again, Django's workers are the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import Page, browser_fixture, needs_chromium, page_fixture  # noqa: F401 - fixtures
from conftest import LiveServer
from realapp import DEADLINE, edit, get, make_django_project, start

pytestmark = needs_chromium

FLASK = {
    "shop/__init__.py": '''
import os

from flask import Flask


def create_app():
    # Counted per process, outside every module a reload purges: a rebuild shows on /builds.
    os.environ["SHOP_BUILDS"] = str(int(os.environ.get("SHOP_BUILDS", "0")) + 1)
    app = Flask(__name__)
    from .views import main
    app.register_blueprint(main)
    return app
''',
    "shop/views.py": '''
import os

from flask import Blueprint, render_template

main = Blueprint("main", __name__)


@main.route("/")
def index():
    return render_template("index.html", greeting="view one")


@main.route("/builds")
def builds():
    return {"pid": os.getpid(), "builds": int(os.environ["SHOP_BUILDS"])}
''',
    "shop/templates/base.html": '''<!DOCTYPE html>
<html><head><title>base one</title>
<link rel="stylesheet" href="{{ url_for('static', filename='style.css') }}"></head>
<body>{% block body %}{% endblock %}</body></html>
''',
    "shop/templates/index.html": '''{% extends "base.html" %}
{% block body %}<h1 id="leaf">leaf one</h1><p id="view">{{ greeting }}</p>{% endblock %}
''',
    "shop/static/style.css": "h1 { color: rgb(255, 0, 0); }\n",
}

LEAF = "document.getElementById('leaf')?.textContent"
VIEW = "document.getElementById('view')?.textContent"
OVERLAY = "document.getElementById('devserver-overlay')?.textContent"
COLOR = "getComputedStyle(document.querySelector('h1')).color"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip("\n"))


def show(page: Page, url: str) -> None:
    """Open ``url`` as a browser tab of the app's page, and mark the document (a reload loses the mark)."""
    page.open(url, timeout=DEADLINE)
    assert page.evaluate("devserverLiveReload.page") == "app"  # the script knows module saves concern this page
    page.evaluate("window.sameDocument = true")


def wait(page: Page, expression: str) -> object:
    """Wait for ``expression`` on the page, and for its live reload to be connected: a save made while a
    reloaded page has no event stream yet would go unheard (a person does not save that fast; a test does)."""
    return page.wait_for(f"devserverLiveReload.connected && ({expression})", timeout=DEADLINE)


def text_is(expression: str, text: str) -> str:
    return f"{expression} === {json.dumps(text)}"


def assert_overlay_then_fix(page: Page, module: Path, old: str, text: str) -> None:
    """A syntax error saved in ``module``: the overlay names it over the same page; the fix (which also turns
    the view's text matching ``old`` into ``text``) removes it and reloads the page."""
    good = module.read_text()
    module.write_text(good + "\ndef broken(:\n")
    shown = str(wait(page, OVERLAY))
    assert module.name in shown and "SyntaxError" in shown, shown
    assert page.evaluate("window.sameDocument") is True  # the page stays under the overlay
    module.write_text(re.sub(old, text, good))
    wait(page, text_is(VIEW, text))
    assert page.evaluate(OVERLAY) is None and page.evaluate("window.sameDocument") is None  # reloaded, no overlay


def assert_stylesheet_swapped(page: Page, stylesheet: Path) -> None:
    wait(page, text_is(COLOR, "rgb(255, 0, 0)"))
    navigations = page.navigations()
    stylesheet.write_text("h1 { color: rgb(0, 0, 255); }\n")
    wait(page, text_is(COLOR, "rgb(0, 0, 255)"))
    assert page.evaluate("window.sameDocument") is True and page.navigations() == navigations


# -- Flask --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flask_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flaskpages")
    write(root, FLASK)
    return root


@pytest.fixture(scope="module")
def flask_server(flask_project: Path) -> Iterator[LiveServer]:
    live = start(flask_project, "shop:create_app()")
    yield live
    live.stop()


def builds(server: LiveServer) -> dict[int, int]:
    """Times each worker built the app, for both workers (new connections until both answered)."""
    seen: dict[int, int] = {}
    for _ in range(200):
        answer = json.loads(get(server, "/builds")[2])
        seen[answer["pid"]] = answer["builds"]
        if len(seen) == 2:
            return seen
    raise AssertionError(f"only {seen} answered")


def test_flask_template_edits_refresh_the_open_page(flask_server: LiveServer, flask_project: Path,
                                                    page: Page) -> None:
    show(page, flask_server.url)
    assert page.evaluate(LEAF) == "leaf one"
    edit(flask_project / "shop/templates/index.html", "leaf one", "leaf two")
    wait(page, text_is(LEAF, "leaf two"))
    edit(flask_project / "shop/templates/base.html", "base one", "base two")
    wait(page, "document.title === 'base two'")
    flask_server.wait_for(r"reload in place \(/shop/templates/base\.html changed\): template caches cleared")


def test_flask_view_edit_refreshes_the_open_page(flask_server: LiveServer, flask_project: Path, page: Page) -> None:
    show(page, flask_server.url)
    edit(flask_project / "shop/views.py", 'greeting="view one"', 'greeting="view two"')
    wait(page, text_is(VIEW, "view two"))


def test_flask_syntax_error_shows_the_overlay_and_the_fix_reloads(flask_server: LiveServer, flask_project: Path,
                                                                 page: Page) -> None:
    show(page, flask_server.url)
    assert_overlay_then_fix(page, flask_project / "shop/views.py", r"view \w+", "view fixed")


def test_flask_stylesheet_save_is_swapped_and_the_app_is_not_built_again(flask_server: LiveServer,
                                                                        flask_project: Path, page: Page) -> None:
    show(page, flask_server.url)
    before = builds(flask_server)
    mark = len(flask_server.lines)
    assert_stylesheet_swapped(page, flask_project / "shop/static/style.css")
    assert builds(flask_server) == before  # neither worker called the factory again
    assert not [line for line in flask_server.lines[mark:] if "reload in place" in line or "reloaded" in line]


# -- Django -------------------------------------------------------------------------------------------------

DJANGO = {
    "catalog/views.py": '''
from django.shortcuts import render


def index(request):
    return render(request, "catalog/index.html", {"greeting": "view one"})
''',
    "catalog/urls.py": '''
from django.urls import path

from . import views

urlpatterns = [path("", views.index)]
''',
    "catalog/templates/catalog/base.html": '''{% load static %}<!DOCTYPE html>
<html><head><title>base one</title><link rel="stylesheet" href="{% static 'catalog/style.css' %}"></head>
<body>{% block body %}{% endblock %}</body></html>
''',
    "catalog/templates/catalog/index.html": '''{% extends "catalog/base.html" %}
{% block body %}<h1 id="leaf">leaf one</h1><p id="view">{{ greeting }}</p>{% endblock %}
''',
    "catalog/static/catalog/style.css": "h1 { color: rgb(255, 0, 0); }\n",
}


@pytest.fixture(scope="module")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_django_project(tmp_path_factory.mktemp("djangopages"), "locallibrary", "catalog", DJANGO)
    urls = root / "locallibrary/urls.py"
    urls.write_text(urls.read_text() + "\nfrom django.contrib.staticfiles.urls import staticfiles_urlpatterns\n\n"
                                       "urlpatterns += staticfiles_urlpatterns()\n")
    return root


@pytest.fixture(scope="module")
def django_server(django_project: Path) -> Iterator[LiveServer]:
    live = start(django_project, "locallibrary.wsgi:application")
    yield live
    live.stop()


def test_django_template_edits_refresh_the_open_page_with_no_restart(django_server: LiveServer,
                                                                    django_project: Path, page: Page) -> None:
    url = django_server.url + "catalog/"
    show(page, url)
    mark = len(django_server.lines)
    edit(django_project / "catalog/templates/catalog/index.html", "leaf one", "leaf two")
    wait(page, text_is(LEAF, "leaf two"))
    edit(django_project / "catalog/templates/catalog/base.html", "base one", "base two")
    wait(page, "document.title === 'base two'")
    django_server.wait_for(r"template caches cleared", start=mark)
    assert not [line for line in django_server.lines[mark:] if "warm restart" in line]


def test_django_view_edit_refreshes_the_open_page(django_server: LiveServer, django_project: Path,
                                                  page: Page) -> None:
    show(page, django_server.url + "catalog/")
    edit(django_project / "catalog/views.py", '"greeting": "view one"', '"greeting": "view two"')
    wait(page, text_is(VIEW, "view two"))


def test_django_syntax_error_shows_the_overlay_and_the_fix_reloads(django_server: LiveServer,
                                                                  django_project: Path, page: Page) -> None:
    show(page, django_server.url + "catalog/")
    assert_overlay_then_fix(page, django_project / "catalog/views.py", r"view \w+", "view fixed")


def test_django_stylesheet_save_is_swapped_and_no_worker_restarts(django_server: LiveServer, django_project: Path,
                                                                 page: Page) -> None:
    show(page, django_server.url + "catalog/")
    assert page.evaluate("document.querySelector('link').href").endswith("/static/catalog/style.css")
    pids = django_server.worker_pids()
    mark = len(django_server.lines)
    assert_stylesheet_swapped(page, django_project / "catalog/static/catalog/style.css")
    assert get(django_server, "/catalog/")[0] == 200
    assert django_server.worker_pids() == pids
    assert not [line for line in django_server.lines[mark:] if re.search("warm restart|reload", line)]
