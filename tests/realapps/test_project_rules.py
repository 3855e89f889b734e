"""Which project files matter, and which strategy a change gets (no server needed)."""

from __future__ import annotations

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
