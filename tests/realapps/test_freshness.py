"""The per-request freshness check: a save is served by the next request, before (or without) the watcher.

The edits here are written through a hard link outside the project folder:
the file (its inode) changes, but the watcher, which watches the project
folder, hears nothing.  Only the workers' check before each request (a stat
of every project file the app was built from) can serve the new code, so a
fresh answer proves the check, and no watcher reload line may appear.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveServer
from realapp import DEADLINE, SteadyLoad, get, user_env

FILES = {
    "shop/__init__.py": '''
from flask import Flask


def create_app():
    app = Flask(__name__)
    from .views import main
    app.register_blueprint(main)
    return app
''',
    "shop/views.py": '''
from flask import Blueprint, render_template

from .words import WORD

main = Blueprint("main", __name__)


@main.route("/")
def index():
    return render_template("index.html", word=WORD)
''',
    "shop/words.py": '''
WORD = "word one"
''',
    "shop/templates/index.html": '''<!DOCTYPE html>
<html><body><p>{{ word }}</p><p>template one</p></body></html>
''',
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("freshproject")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip())
    return root


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator:
    env = user_env()
    env.pop("WATCHFILES_FORCE_POLLING", None)  # a polling watcher would hear the writes through the links
    live = LiveServer(["--workers", "2", "shop:create_app()"], project, env).start(timeout=DEADLINE)
    yield live
    live.stop()


def unheard(project: Path, name: str) -> Path:
    """A hard link to ``project/name`` outside the watched folder: writes through it reach the file unheard."""
    outside = project.parent / f"{project.name}-links"
    outside.mkdir(exist_ok=True)
    link = outside / name.replace("/", "_")
    if not link.exists():
        os.link(project / name, link)
    return link


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    with open(path, "r+") as f:  # in place: the same inode, as the project's name for it sees
        f.write(text.replace(old, new))
        f.truncate()


def test_a_module_saved_unheard_is_served_by_the_next_request_in_every_worker(server, project: Path) -> None:
    mark = len(server.lines)
    with SteadyLoad(server, "/") as load:
        rewrite(unheard(project, "shop/words.py"), "word one", "word two")
        bodies = [get(server, "/")[2] for _ in range(8)]  # new connections: both workers answer some
    stale = [body for body in bodies if "word two" not in body]
    assert not stale, f"answered by the old code after the save: {stale[:2]}\n" + "\n".join(server.lines[-20:])
    load.assert_clean()
    assert not [line for line in server.lines[mark:] if line.startswith(("reload", "reloaded"))], \
        "the watcher heard the save: this test proves nothing"
    assert list((project / "shop/__pycache__").glob("words.*.pyc")), "bytecode writing was off"


def test_a_template_saved_unheard_is_served_by_the_next_request(server, project: Path) -> None:
    assert "template one" in get(server, "/")[2]  # read once: the app knows the file
    with SteadyLoad(server, "/") as load:
        rewrite(unheard(project, "shop/templates/index.html"), "template one", "template two")
        bodies = [get(server, "/")[2] for _ in range(8)]
    assert all("template two" in body for body in bodies), bodies[:2]
    load.assert_clean()


def test_a_watched_save_then_the_watchers_reload_change_nothing_more(server, project: Path) -> None:
    """The save is heard too: the request path rebuilt the app, the watcher's message finds it current."""
    mark = len(server.lines)
    path = project / "shop/words.py"
    path.write_text(path.read_text().replace("word two", "word three"))
    assert "word three" in get(server, "/")[2]
    server.wait_for(r"^reloaded shop", start=mark)
    bodies = [get(server, "/")[2] for _ in range(8)]
    assert all("word three" in body for body in bodies), bodies[:2]
