"""APP as people write it: parsing, discovery, and one-line errors from the real command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from realapp import user_env

from devserver.apps import appspec


@pytest.mark.parametrize("text,expected", [
    ("mysite.wsgi:application", appspec.AppSpec("mysite.wsgi", "application")),
    ("pkg:create_app()", appspec.AppSpec("pkg", "create_app", True)),
    ("pkg:create_app('dev', debug=True, n=3)", appspec.AppSpec("pkg", "create_app", True, ("dev",), (("debug", True), ("n", 3)))),
    ("pkg.module", appspec.AppSpec("pkg.module")),
    ("app.py", appspec.AppSpec("app")),
])
def test_parse(text: str, expected: appspec.AppSpec) -> None:
    parsed = appspec.parse(text)
    assert (parsed.module, parsed.attribute, parsed.call, parsed.args, parsed.kwargs) == \
        (expected.module, expected.attribute, expected.call, expected.args, expected.kwargs)


@pytest.mark.parametrize("text", ["pkg:create_app(__import__('os'))", "pkg:f(x)", "pkg:a.b", "pkg:f(**{})",
                                  "9pkg:app", "pkg:", "pkg:f(1+"])
def test_parse_refuses_anything_but_names_and_literals(text: str) -> None:
    with pytest.raises(appspec.AppLoadError) as info:
        appspec.parse(text)
    assert info.value.kind == "spec" and "\n" not in str(info.value)


PROJECT = {
    "pkg/__init__.py": "def create_app(name='default'):\n    def app(environ, start_response):\n"
                       "        start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                       "        return [name.encode()]\n    return app\n",
    "broken.py": "import json\nvalue = json.loads('{')\n",
    "needsdep.py": "import no_such_dependency_here\n",
    "factoryfails.py": "def create_app():\n    raise RuntimeError('database is down')\n",
    "notapp.py": "app = 42\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("app,message", [
    ("nosuchmodule:app", "devserver: error: no module named 'nosuchmodule'"),
    ("pkg:nothing", "devserver: error: module 'pkg' has no attribute 'nothing'"),
    ("pkg.sub", "devserver: error: no module named 'pkg.sub'"),
    ("broken:app", "devserver: error: importing 'broken' failed: json.decoder.JSONDecodeError: Expecting property name"),
    ("needsdep", "devserver: error: importing 'needsdep' failed: ModuleNotFoundError: No module named "
                 "'no_such_dependency_here' (needsdep.py:1)"),
    ("factoryfails", "devserver: error: calling factoryfails:create_app() failed: RuntimeError: database is down "
                     "(factoryfails.py:2)"),
    ("notapp", "devserver: error: notapp.app is a int, not a WSGI callable"),
    ("pkg:create_app(open('x'))", "devserver: error: the factory arguments in APP"),
])
def test_app_errors_are_one_line(project: Path, app: str, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "devserver", "--no-tui", "--port", "0", app], cwd=project,
                            env=user_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "usage:" not in result.stderr and "Traceback" not in result.stderr


def test_app_dir_and_factory_arguments(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from realapp import get, start

    elsewhere = tmp_path_factory.mktemp("cwd")
    server = start(elsewhere, "--app-dir", str(project), "pkg:create_app('from args')")
    try:
        assert get(server, "/anything")[2] == "from args"
    finally:
        server.stop()
