"""Hot reload of dynamic modules, against a real server and real files.

Each test edits files in the fixture site's ``dynamic/`` and waits for the
console's "reloaded ..." / "reload failed" line (the watcher has handled the
batch and told the workers) before asking for the page again.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
from pathlib import Path

from devserver.ipc.config import Config
from devserver.ipc.control import PageChanged
from devserver.ipc.events import ReloadEvent
from devserver.reload.watcher import ImportGraph, Watcher, ignored, module_name, remove_bytecode

RELOAD_LINE = r"^(reloaded|reload failed) "


def get(server, path: str) -> tuple[int, str]:
    """GET ``path`` on a fresh connection: (status, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def app_source(value: object) -> str:
    """A module in the zero-argument form: ``application()`` returns ``X=<value>``."""
    return f"X = {value!r}\n\n\ndef application():\n    return f'X={{X}}'\n"


def save_and_wait(server, path: Path, text: str | None, pattern: str = r"^reloaded ") -> str:
    """Write (or, with None, delete) ``path``; return the console's reload line for it."""
    start = len(server.lines)
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    return server.wait_for(pattern, start=start)


def reload_lines(server, start: int = 0) -> list[str]:
    return [line for line in server.lines[start:] if re.search(RELOAD_LINE, line)]


def test_edit_is_served_by_every_worker(server_factory, site: Path) -> None:
    module = site / "dynamic" / "greet.py"
    module.write_text(app_source("first"))
    server = server_factory("--workers", "2")
    for _ in range(4):
        assert get(server, "/greet.py") == (200, "X=first")
    line = save_and_wait(server, module, app_source("second"))
    assert "greet" in line
    # Fresh connections land on either worker: each must have purged the module.
    for _ in range(6):
        assert get(server, "/greet.py") == (200, "X=second")


def test_same_second_same_size_edit_with_bytecode_on(server_factory, site: Path) -> None:
    """Python trusts a .pyc whose recorded mtime (whole seconds) and size match the source."""
    module = site / "dynamic" / "samesec.py"
    module.write_text(app_source(1))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    server = server_factory("--workers", "1", env=env)
    assert get(server, "/samesec.py") == (200, "X=1")
    pycache = site / "dynamic" / "__pycache__"
    assert list(pycache.glob("samesec.*.pyc")), "the worker should have written bytecode"

    before = module.stat()
    new = app_source(2)
    assert len(new) == before.st_size
    start = len(server.lines)
    module.write_text(new)
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same second, for certain
    server.wait_for(r"^reloaded .*samesec", start=start)
    assert get(server, "/samesec.py") == (200, "X=2")


def test_importer_of_changed_module_is_reloaded(server_factory, site: Path) -> None:
    dynamic = site / "dynamic"
    (dynamic / "helper.py").write_text("VALUE = 'old'\n")
    (dynamic / "middle.py").write_text("from helper import VALUE\n")
    (dynamic / "user.py").write_text("import middle\n\n\ndef application():\n    return middle.VALUE\n")
    (dynamic / "bystander.py").write_text("def application():\n    return 'same'\n")
    server = server_factory("--workers", "1")
    assert get(server, "/user.py") == (200, "old")
    assert get(server, "/bystander.py") == (200, "same")
    line = save_and_wait(server, dynamic / "helper.py", "VALUE = 'new'\n")
    assert "helper, middle, user" in line and "bystander" not in line
    assert get(server, "/user.py") == (200, "new")


def test_new_module_is_served_without_restart(server_factory, site: Path) -> None:
    server = server_factory("--workers", "1")
    assert get(server, "/fresh.py")[0] == 404
    save_and_wait(server, site / "dynamic" / "fresh.py", app_source("fresh"))
    assert get(server, "/fresh.py") == (200, "X=fresh")


def test_deleted_module_is_purged_and_404(server_factory, site: Path) -> None:
    module = site / "dynamic" / "gone.py"
    module.write_text(app_source("here"))
    server = server_factory("--workers", "1")
    assert get(server, "/gone.py") == (200, "X=here")
    line = save_and_wait(server, module, None)
    assert "gone" in line
    assert get(server, "/gone.py")[0] == 404


def test_syntax_error_gives_500_then_recovers(server_factory, site: Path) -> None:
    module = site / "dynamic" / "fragile.py"
    module.write_text(app_source("ok"))
    server = server_factory("--workers", "1")
    assert get(server, "/fragile.py") == (200, "X=ok")

    save_and_wait(server, module, "def application(:\n    return 'broken'\n", r"^reload failed .*fragile")
    server.wait_for(r"SyntaxError")
    status, body = get(server, "/fragile.py")
    assert status == 500
    assert "SyntaxError" in body and f"<code>{module}</code>, line 1" in body  # the line that does not compile
    assert get(server, "/echo.py")[0] == 200  # the server stays up

    save_and_wait(server, module, app_source("fixed"), r"^reloaded .*fragile")
    assert get(server, "/fragile.py") == (200, "X=fixed")


def test_no_reload_keeps_serving_the_old_code(server_factory, site: Path) -> None:
    module = site / "dynamic" / "frozen.py"
    module.write_text(app_source("old"))
    server = server_factory("--workers", "1", "--no-reload")
    watching = server_factory("--workers", "1")  # the same folder, watched: the witness that the save was seen
    assert get(server, "/frozen.py") == get(watching, "/frozen.py") == (200, "X=old")
    # Nothing of the first server is watching, so it has no line to wait for: the second one's
    # reload says a watcher has seen the save, and the first must still serve the old code after it.
    save_and_wait(watching, module, app_source("new"), r"^reloaded .*frozen")
    assert get(watching, "/frozen.py") == (200, "X=new")
    assert get(server, "/frozen.py") == (200, "X=old")
    assert reload_lines(server) == []


def test_editor_and_cache_files_trigger_no_reload(server_factory, site: Path) -> None:
    dynamic = site / "dynamic"
    (dynamic / "real.py").write_text(app_source(1))
    server = server_factory("--workers", "1")
    start = len(server.lines)
    (dynamic / "__pycache__").mkdir(exist_ok=True)
    junk = [".real.py.swp", ".real.py.swx", "real.py~", "4913", ".#real.py", ".hidden.py",
            "__pycache__/real.cpython-311.pyc", "__pycache__/stray.py"]
    for name in junk:
        (dynamic / name).write_text("junk")
    # A real edit after the junk: had any junk counted, it would show in this
    # batch's file count or in an earlier reload line.
    (dynamic / "real.py").write_text(app_source(2))
    server.wait_for(r"^reloaded real ", start=start)
    lines = reload_lines(server, start)
    assert len(lines) == 1 and "(1 file(s)" in lines[0], lines


# -- the watcher's pieces, without a server -------------------------------------------

def test_ignored_paths() -> None:
    base = "/site/dynamic"
    for name in ("a/__pycache__/x.py", ".x.py.swp", "x.py.swx", "x.py~", "4913", ".#x.py", ".git/x.py",
                 "x.pyc", "sub/.hidden/x.py"):
        assert ignored(f"{base}/{name}", base), name
    for name in ("x.py", "sub/x.py", "style.css", "4913.py"):
        assert not ignored(f"{base}/{name}", base), name
    assert not ignored("/home/u/.sites/dynamic/x.py", "/home/u/.sites/dynamic")  # hidden above the base is fine


def test_module_names() -> None:
    assert module_name("/d", "/d/a.py") == "a"
    assert module_name("/d", "/d/pkg/__init__.py") == "pkg"
    assert module_name("/d", "/d/pkg/sub.py") == "pkg.sub"
    assert module_name("/d", "/d/notes.txt") is None
    assert module_name("/d", "/d/my-app.py") is None
    assert module_name("/d", "/elsewhere/a.py") is None


def test_import_graph_is_transitive(tmp_path: Path) -> None:
    files = {
        "base.py": "X = 1\n",
        "direct.py": "import base\n",
        "fromimp.py": "from direct import something\n",
        "lazy.py": "def f():\n    import base\n",
        "other.py": "import os, json\n",
        "pkg/__init__.py": "from . import inner\n",
        "pkg/inner.py": "from .. import nothing\nfrom base import X\n",
        "uses_pkg.py": "from pkg import inner\n",
        "broken.py": "def (:\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = ImportGraph(str(tmp_path))
    assert graph.affected(["base"]) == {"base", "direct", "fromimp", "lazy", "pkg", "pkg.inner", "uses_pkg"}
    assert graph.affected(["pkg.inner"]) == {"pkg", "pkg.inner", "uses_pkg"}
    assert graph.affected(["other"]) == {"other"}
    assert graph.affected(["gone"]) == {"gone"}  # a deleted module is still purged


def test_remove_bytecode(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("X = 1\n")
    pycache = tmp_path / "__pycache__"
    pycache.mkdir()
    tag = sys.implementation.cache_tag
    doomed = [pycache / f"mod.{tag}.pyc", pycache / f"mod.{tag}.opt-1.pyc", pycache / "mod.pypy39.pyc"]
    kept = [pycache / f"module.{tag}.pyc", pycache / f"other.{tag}.pyc"]
    for path in doomed + kept:
        path.write_bytes(b"")
    remove_bytecode(str(source))
    assert [p for p in doomed if p.exists()] == []
    assert all(p.exists() for p in kept)



class RecordingSupervisor:
    """Stands in for the supervisor: records what the watcher tells it, in order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.calls: list[object] = []

    def reload(self, modules: list[str], paths: list[str]) -> int:
        self.calls.append(("reload", tuple(modules)))
        return 1

    def broadcast(self, message: tuple[object, ...]) -> None:
        self.calls.append(message)

    def sink(self, events: list[object]) -> None:
        self.calls.extend(events)


def test_batch_reloads_modules_before_telling_browsers(tmp_path: Path) -> None:
    """The same folder as --root and --dynamic: .py files are modules, the rest pages."""
    (tmp_path / "app.py").write_text("import lib\n")
    (tmp_path / "lib.py").write_text("X = 1\n")
    supervisor = RecordingSupervisor(Config(root=str(tmp_path), dynamic=str(tmp_path)))
    watcher = Watcher()
    watcher.supervisor = supervisor
    watcher.graph = ImportGraph(str(tmp_path))
    assert watcher.classify(str(tmp_path / "index.html")) == ("page", "/index.html")
    assert watcher.classify(str(tmp_path / ".lib.py.swp")) is None
    assert watcher.classify("/elsewhere/lib.py") is None

    watcher.on_changes({str(tmp_path / "lib.py"), str(tmp_path / "lib.py~"), str(tmp_path / "index.html")})
    reload_call, event, page = supervisor.calls
    assert reload_call == ("reload", ("app", "lib"))
    assert isinstance(event, ReloadEvent) and event.modules == ("app", "lib") and event.error is None
    assert page == PageChanged("reload", ("/index.html", "/lib.py"))

    supervisor.calls.clear()
    watcher.on_changes({str(tmp_path / "css" / "site.css")})
    assert supervisor.calls == [PageChanged("css", ("/css/site.css",))]
