"""The watch set with no configuration, on a real server: a virtualenv inside the project, tools' folders, caches
and the files the app writes never reload anything; a watch the system refuses is one line with the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import LiveServer
from realapp import DEADLINE, LiveReloadStream, edit, get, user_env

MYAPP = """
import os
import sqlite3

VERSION = "v1"


def create_app():
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/write":  # what apps write at run time: an upload, a database, a log
            os.makedirs("uploads", exist_ok=True)
            with open("uploads/pic.png", "wb") as f:
                f.write(b"\\x89PNG")
            with sqlite3.connect("data.sqlite3") as db:
                db.execute("create table if not exists t (x)")
                db.execute("insert into t values (1)")
            with open("app.log", "a") as f:
                f.write("wrote\\n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [VERSION.encode()]
    return app
"""

NOISE = [".venv/lib/python3/site-packages/fake.py", ".venv/pyvenv.cfg", "venv/lib/site-packages/other.py",
         "node_modules/left-pad/index.js", ".git/HEAD", "__pycache__/myapp.cpython-311.pyc",
         ".mypy_cache/3.11/myapp.json", ".pytest_cache/v/cache/lastfailed", ".ruff_cache/0.1/x", ".tox/py/x.py",
         ".nox/s/x.py", "lib/site-packages/vendored.py", "myapp.py~", ".myapp.py.swp"]


def events_of(stream: LiveReloadStream) -> list[tuple[str, object]]:
    found = []
    for block in stream.buffer.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            found.append((lines["event"], json.loads(lines.get("data", "null"))))
    return found


def test_a_virtualenv_tools_caches_and_the_app_s_own_files_never_reload(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(MYAPP)
    (tmp_path / "static").mkdir()
    (tmp_path / "static/site.css").write_text("body { color: red }\n")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / ".venv"), "--without-pip"], check=True)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv"), "--without-pip"], check=True)
    server = LiveServer(["--workers", "2", "myapp:create_app()"], tmp_path, user_env()).start(timeout=DEADLINE)
    try:
        assert get(server, "/")[2] == "v1"
        stream = LiveReloadStream(server)
        assert get(server, "/write")[0] == 200
        for name in NOISE:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.write("# touched\n")
        mark = len(server.lines)
        # The sentinel: a stylesheet saved after the noise; its event comes once the watcher saw everything before.
        (tmp_path / "static/site.css").write_text("body { color: blue }\n")
        stream._read_until(b"event: css")
        assert [event for event in events_of(stream) if event[0] != "hello"] == [("css", ["/static/site.css"])]
        assert not any("reload" in line for line in server.lines), server.lines
        # A real edit still reloads, and only for itself.
        edit(tmp_path / "myapp.py", 'VERSION = "v1"', 'VERSION = "v2"', server)
        assert get(server, "/")[2] == "v2"
        reloads = [line for line in server.lines[mark:] if "reload" in line]
        assert reloads and all("myapp" in line for line in reloads), reloads
        stream.close()
    finally:
        server.stop()


SITECUSTOMIZE = """
import watchfiles._rust_notify as rust

real = rust.RustNotify


def refusing(paths, debug, force_polling, *args):
    # What watchfiles raises when inotify_add_watch fails with ENOSPC (notify's MaxFilesWatch): a full watch table.
    if not force_polling:
        raise OSError(f"OS file watch limit reached. (Error {{ kind: MaxFilesWatch, paths: {paths!r} }})")
    return real(paths, debug, force_polling, *args)


rust.RustNotify = refusing
"""


def test_a_refused_watch_is_one_line_with_the_fix_and_polling_carries_on(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(MYAPP)
    # The save below keeps the size and the whole second of this mtime: what notify's poller (whole seconds) and
    # Python's bytecode check (whole seconds and size) both take for no change.
    second = (time.time_ns() // 1_000_000_000 - 10) * 1_000_000_000
    os.utime(tmp_path / "myapp.py", ns=(second + 100_000_000, second + 100_000_000))
    seam = tmp_path / "seam"
    seam.mkdir()
    (seam / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = user_env()
    env["PYTHONPATH"] = os.pathsep.join([str(seam), env["PYTHONPATH"]])
    server = LiveServer(["--workers", "1", "myapp:create_app()"], tmp_path, env).start(timeout=DEADLINE)
    try:
        line = server.wait_for(r"file watcher: the system refused a watch", timeout=DEADLINE)
        assert "inotify watch limit" in line and "sysctl fs.inotify.max_user_watches=524288" in line
        assert not any("Traceback" in one for one in server.lines)
        assert get(server, "/")[2] == "v1"
        mark = len(server.lines)
        edit(tmp_path / "myapp.py", 'VERSION = "v1"', 'VERSION = "v2"')
        os.utime(tmp_path / "myapp.py", ns=(second + 600_000_000, second + 600_000_000))
        server.wait_for(r"^(reloaded|reload failed) ", timeout=DEADLINE, start=mark)  # seen by polling
        assert get(server, "/")[2] == "v2"
    finally:
        server.stop()
