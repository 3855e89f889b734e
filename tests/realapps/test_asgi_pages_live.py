"""A page served by a real FastAPI app, open in headless Chromium, follows template and view saves by itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import Page, browser_fixture, needs_chromium, page_fixture  # noqa: F401 - fixtures
from conftest import LiveServer
from realapp import edit, start
from test_app_pages_live import LEAF, VIEW, show, text_is, wait, write

pytestmark = needs_chromium
pytest.importorskip("fastapi")
pytest.importorskip("jinja2")

FASTAPI = {
    "main.py": '''
import pathlib

from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=str(pathlib.Path(__file__).parent / "templates"))
app = FastAPI()


@app.get("/")
async def index(request: Request):
    return templates.TemplateResponse(request, "index.html", {"greeting": "view one"})
''',
    "templates/index.html": '''<!DOCTYPE html>
<html><head><title>fastapi page</title></head>
<body><h1 id="leaf">leaf one</h1><p id="view">{{ greeting }}</p></body></html>
''',
}


@pytest.fixture(scope="module")
def fastapi_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fastapipages")
    write(root, FASTAPI)
    return root


@pytest.fixture(scope="module")
def fastapi_server(fastapi_project: Path) -> Iterator[LiveServer]:
    live = start(fastapi_project, "main:app")
    yield live
    live.stop()


def test_fastapi_template_edit_refreshes_the_open_page(fastapi_server: LiveServer, fastapi_project: Path,
                                                       page: Page) -> None:
    show(page, fastapi_server.url)
    assert page.evaluate(LEAF) == "leaf one"
    edit(fastapi_project / "templates/index.html", "leaf one", "leaf two")
    wait(page, text_is(LEAF, "leaf two"))


def test_fastapi_view_edit_refreshes_the_open_page(fastapi_server: LiveServer, fastapi_project: Path,
                                                   page: Page) -> None:
    show(page, fastapi_server.url)
    edit(fastapi_project / "main.py", '"greeting": "view one"', '"greeting": "view two"')
    wait(page, text_is(VIEW, "view two"))
