"""Which project files matter, and which strategy a change gets (no server needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from devserver.apps.projectfiles import ProjectFiles
from devserver.supervisor.projectwatch import Change, restart_reason


def test_project_files_exclude_virtualenvs_packages_and_tools(tmp_path: Path) -> None:
    for name in ("app/views.py", "venv/lib/python3.11/site-packages/flask/app.py", "venv/pyvenv.cfg",
                 "vendor/site-packages/x.py", ".git/config", "node_modules/x/index.js", "templates/a.html",
                 "db.sqlite3", "data/big.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    files = ProjectFiles(str(tmp_path), include=("*.json",), exclude=("data/*",))
    owned = {name for name in ("app/views.py", "venv/lib/python3.11/site-packages/flask/app.py",
                               "vendor/site-packages/x.py", ".git/config", "node_modules/x/index.js",
                               "templates/a.html", "db.sqlite3") if files.owns(str(tmp_path / name))}
    assert owned == {"app/views.py", "templates/a.html", "db.sqlite3"}
    assert not files.owns("/usr/lib/python3.11/json/__init__.py")
    assert files.excluded(str(tmp_path / "db.sqlite3"))  # what apps write never triggers a reload
    assert files.excluded(str(tmp_path / "data/big.json")) and files.included(str(tmp_path / "data/big.json"))
    assert not files.excluded(str(tmp_path / "templates/a.html"))


def test_an_include_brings_back_hidden_names_but_never_a_virtualenv(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv/pyvenv.cfg").write_text("")
    files = ProjectFiles(str(tmp_path), include=(".flaskenv", "*.toml"))
    assert files.watched(str(tmp_path / ".flaskenv")) and not files.owns(str(tmp_path / ".flaskenv"))
    assert files.watched(str(tmp_path / "conf/app.toml"))
    assert not files.watched(str(tmp_path / ".venv/lib/conf.toml"))
    assert not files.watched(str(tmp_path / "node_modules/x/package.toml"))
    assert not ProjectFiles(str(tmp_path)).watched(str(tmp_path / ".flaskenv"))


def test_the_running_interpreter_s_prefix_is_never_the_project_s(tmp_path: Path) -> None:
    from devserver.apps import projectfiles

    inside = tmp_path / "env"
    (inside / "lib").mkdir(parents=True)
    (inside / "lib/mod.py").write_text("")
    saved = projectfiles.ENVIRONMENTS
    projectfiles.ENVIRONMENTS = frozenset({*saved, str(inside.resolve())})  # as when sys.prefix is there (conda)
    try:
        assert not ProjectFiles(str(tmp_path)).owns(str(inside / "lib/mod.py"))
    finally:
        projectfiles.ENVIRONMENTS = saved
    assert os.path.realpath(sys.prefix) in saved


def change(**fields: object) -> Change:
    base = {"strategy": "auto", "frameworks": frozenset(), "modules": ("shop.views",), "import_failed": False}
    return Change(**{**base, **fields})  # type: ignore[arg-type]


def test_restart_only_when_in_place_cannot_be_right() -> None:
    assert restart_reason(change()) is None
    assert restart_reason(change(strategy="restart")) == "--reload=restart"
    assert "Django" in (restart_reason(change(frameworks=frozenset({"django"}))) or "")
    assert restart_reason(change(modules=("mysite.settings",))) == "a settings module changed"
    assert restart_reason(change(modules=("config.settings_dev",))) == "a settings module changed"
    assert "import failed" in (restart_reason(change(import_failed=True)) or "")
