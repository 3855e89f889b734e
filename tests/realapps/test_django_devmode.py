"""A Django project with models, the admin and an app's static files, served as ``runserver`` serves it.

Built by ``django-admin startproject`` in a tmp dir and served by the real
devserver command (JSON log, so each request's error report can be read).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveServer
from realapp import DEADLINE, edit, get, make_django_project, user_env, wait_for_body

MODELS = '''
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)


class Book(models.Model):
    title = models.CharField(max_length=100)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
'''

ADMIN = '''
from django.contrib import admin

from .models import Author, Book

admin.site.register(Author)
admin.site.register(Book)
'''

VIEWS = '''
from django.http import HttpResponse

from .models import Author


def index(request):
    return HttpResponse("catalog index one")


def broken(request):
    shelf = "third shelf"
    raise ValueError(f"no book on the {shelf}")
'''

URLS = '''
from django.urls import path

from . import views

urlpatterns = [path("", views.index), path("broken/", views.broken)]
'''

STYLE = "body { color: rebeccapurple }\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = {"models.py": MODELS, "admin.py": ADMIN, "views.py": VIEWS, "urls.py": URLS, "static/catalog/style.css": STYLE}
    return make_django_project(tmp_path_factory.mktemp("djangodevmode"), "mysite", "catalog",
                          {f"catalog/{name}": text for name, text in files.items()})


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[LiveServer]:
    live = LiveServer(["--workers", "2", "--log-format", "json", "mysite.wsgi:application"], project,
                      user_env()).start(timeout=DEADLINE)
    yield live
    live.stop()


def request_record(server: LiveServer, target: str) -> dict[str, Any]:
    """The JSON log's RequestEvent of the last request for ``target`` (waits for it)."""
    server.wait_for(rf'"type": "RequestEvent".*"target": "{target}"', timeout=DEADLINE)
    records = [json.loads(line) for line in server.lines if line.startswith("{") and '"RequestEvent"' in line]
    return [r for r in records if r.get("target") == target][-1]


def test_models_are_imported_once_at_start(server: LiveServer) -> None:
    assert get(server, "/catalog/")[2] == "catalog index one"
    assert get(server, "/admin/login/")[0] == 200  # the admin imported the models too
    registered = [line for line in server.lines if "already registered" in line]
    assert not registered, "\n".join(registered)


def test_static_files_are_served_as_runserver_serves_them(server: LiveServer) -> None:
    status, headers, body = get(server, "/static/admin/css/base.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and "body" in body
    status, headers, body = get(server, "/static/catalog/style.css")
    assert status == 200 and body == STYLE
    assert get(server, "/static/catalog/missing.css")[0] == 404


def test_a_view_that_raises_keeps_djangos_page_and_reaches_the_dashboard(server: LiveServer) -> None:
    status, _, body = get(server, "/catalog/broken/")
    assert status == 500 and "ValueError at /catalog/broken/" in body  # Django's technical 500, as runserver
    record = request_record(server, "/catalog/broken/")
    report = record["error_report"]
    assert report["exception"] == "ValueError: no book on the third shelf"
    raising = report["frames"][-1]
    assert raising["filename"].endswith("catalog/views.py") and raising["function"] == "broken"
    assert ["shelf", "'third shelf'"] in raising["locals"]


def test_requests_during_a_view_syntax_error_keep_answering_the_error(server: LiveServer, project: Path) -> None:
    views = project / "catalog/views.py"
    mark = len(server.lines)
    edit(views, "def index(request):", "def index(request:")
    server.wait_for(r'"type": "ReloadEvent".*SyntaxError', timeout=DEADLINE, start=mark)  # the restart is done
    line = views.read_text().splitlines().index("def index(request:") + 1
    for _ in range(6):  # each one answered by the import error page (no warm restart, no Django error chain)
        status, _, body = get(server, "/catalog/")
        assert status == 500, body[:300]
        assert "Module &#x27;catalog.views&#x27; failed to import." in body
        assert "SyntaxError: &#x27;(&#x27; was never closed" in body
        assert f"<code>{views}</code>, line {line}, in <code>&lt;module&gt;</code>" in body
        assert "dynamic.py" not in body and "project.py" not in body and "&lt;frozen importlib" not in body
    edit(views, "def index(request:", "def index(request):")
    wait_for_body(server, "/catalog/", "catalog index one")
    assert not [line for line in server.lines if "already registered" in line]  # restarted workers neither
