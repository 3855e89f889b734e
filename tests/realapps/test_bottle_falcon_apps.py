"""A Bottle app (with a template) and a Falcon app, served by the real devserver command and edited live."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from realapp import SteadyLoad, assert_all_fresh, edit, get, start, wait_for_body

BOTTLE_APP = '''
import bottle

from helpers import shout

app = bottle.Bottle()


@app.route("/")
def index():
    return bottle.template("page", word=shout("bottle one"))


@app.route("/plain")
def plain():
    return "plain bottle one"
'''

BOTTLE_HELPERS = '''
def shout(text):
    return text.upper()
'''

BOTTLE_TEMPLATE = '''<!DOCTYPE html>
<html><body><h1>{{word}}</h1><p>bottle template one</p></body></html>
'''

FALCON_APP = '''
import falcon


class Things:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_HTML
        resp.text = "<!DOCTYPE html><html><body><p>falcon one</p></body></html>"


app = falcon.App()
app.add_route("/things", Things())
'''


@pytest.fixture(scope="module")
def bottle_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bottleproject")
    (root / "app.py").write_text(BOTTLE_APP.lstrip())
    (root / "helpers.py").write_text(BOTTLE_HELPERS.lstrip())
    (root / "views").mkdir()
    (root / "views/page.tpl").write_text(BOTTLE_TEMPLATE)
    return root


@pytest.fixture(scope="module")
def bottle_server(bottle_project: Path) -> Iterator:
    live = start(bottle_project, "app:app")
    yield live
    live.stop()


def test_bottle_view_helper_and_template_edits(bottle_server, bottle_project: Path) -> None:
    status, _, body = get(bottle_server, "/")
    assert status == 200 and "BOTTLE ONE" in body and "/__devserver__/livereload.js" in body
    with SteadyLoad(bottle_server, "/plain") as load:
        edit(bottle_project / "app.py", "plain bottle one", "plain bottle two", bottle_server)
        wait_for_body(bottle_server, "/plain", "plain bottle two")
    assert_all_fresh(bottle_server, "/plain", "plain bottle two")
    load.assert_clean()
    edit(bottle_project / "helpers.py", "text.upper()", "text.upper() + '!'", bottle_server)
    wait_for_body(bottle_server, "/", "BOTTLE ONE!")
    assert_all_fresh(bottle_server, "/", "BOTTLE ONE!")
    edit(bottle_project / "views/page.tpl", "bottle template one", "bottle template two", bottle_server)
    wait_for_body(bottle_server, "/", "bottle template two")
    assert_all_fresh(bottle_server, "/", "bottle template two")
    bottle_server.wait_for(r"reload in place \(app changed\)")


@pytest.fixture(scope="module")
def falcon_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("falconproject")
    (root / "things.py").write_text(FALCON_APP.lstrip())
    return root


def test_falcon_app_found_by_module_name_and_edited(falcon_project: Path) -> None:
    server = start(falcon_project, "things")  # a bare module: its `app` is found
    try:
        status, headers, body = get(server, "/things")
        assert status == 200 and "falcon one" in body and "/__devserver__/livereload.js" in body
        assert int(headers["content-length"]) == len(body.encode())
        with SteadyLoad(server, "/things") as load:
            edit(falcon_project / "things.py", "falcon one", "falcon two", server)
            wait_for_body(server, "/things", "falcon two")
        assert_all_fresh(server, "/things", "falcon two")
        load.assert_clean()
        assert get(server, "/nothing")[0] == 404
        # An import that fails part-way: 500 with the traceback, then the fix is served by a warm restart
        # (the half-made module state of the failed import is not trusted).
        edit(falcon_project / "things.py", 'app.add_route("/things", Things())',
             'app.add_route("/things", Things())\nraise RuntimeError("half imported")', server)
        mark = len(server.lines)
        wait_for_body(server, "/things", "half imported")
        server.wait_for(r"reload failed things", start=mark)  # the supervisor knows of the failure
        edit(falcon_project / "things.py", '\nraise RuntimeError("half imported")', "")
        edit(falcon_project / "things.py", "falcon two", "falcon three", server)
        wait_for_body(server, "/things", "falcon three")
        assert_all_fresh(server, "/things", "falcon three")
        server.wait_for(r"warm restart \(an import failed part-way", start=mark)
    finally:
        server.stop()
