"""Settings in layers: defaults < [tool.devserver] < DEVSERVER_* < the command line, --print-config, bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from devserver.cli import build_parser
from devserver.settings.layers import resolve
from devserver.settings.options import options_of
from devserver.settings.pyproject import ConfigError

PYPROJECT = """
[tool.devserver]
workers = 3
allowed-host = ["file.test"]
tui = false
app = "myshop:create_app()"
"""


def settings(folder: Path, argv: list[str], environ: dict[str, str] | None = None) -> tuple[dict[str, object],
                                                                                        dict[str, str]]:
    resolved = resolve(build_parser(), argv, environ or {}, str(folder))
    return vars(resolved.args), dict(resolved.sources)


def run(folder: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DEVSERVER_")}
    environ["PYTHONPATH"] = str(REPO)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "devserver", *argv], cwd=folder, env=environ, capture_output=True,
                          text=True, timeout=60)


def test_defaults_without_a_pyproject(tmp_path: Path) -> None:
    values, sources = settings(tmp_path, [])
    assert values["workers"] == 2 and values["allowed_host"] == [] and values["app"] is None
    assert set(sources.values()) == {"default"}


@pytest.mark.parametrize(("dest", "expected"), [("workers", 3), ("allowed_host", ["file.test"]),
                                                ("no_tui", True), ("app", "myshop:create_app()")])
def test_pyproject_overrides_the_defaults(tmp_path: Path, dest: str, expected: object) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    values, sources = settings(tmp_path, [])
    assert values[dest] == expected and sources[dest] == "pyproject.toml"


@pytest.mark.parametrize(("variable", "text", "dest", "expected"), [
    ("DEVSERVER_WORKERS", "5", "workers", 5),
    ("DEVSERVER_ALLOWED_HOST", "env.test, Other.test", "allowed_host", ["env.test", "other.test"]),
    ("DEVSERVER_TUI", "true", "no_tui", False),
    ("DEVSERVER_APP", "other:app", "app", "other:app"),
])
def test_the_environment_overrides_pyproject(tmp_path: Path, variable: str, text: str, dest: str,
                                             expected: object) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    values, sources = settings(tmp_path, [], {variable: text})
    assert values[dest] == expected and sources[dest] == variable


@pytest.mark.parametrize(("argv", "dest", "expected"), [
    (["--workers", "7"], "workers", 7),
    (["--allowed-host", "cli.test"], "allowed_host", ["cli.test"]),  # replaces the lower layers' lists
    (["--no-tui"], "no_tui", True),
    (["cli:app"], "app", "cli:app"),
])
def test_the_command_line_overrides_the_environment(tmp_path: Path, argv: list[str], dest: str,
                                                    expected: object) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("tui = false", "tui = true"))
    environ = {"DEVSERVER_WORKERS": "5", "DEVSERVER_ALLOWED_HOST": "env.test", "DEVSERVER_TUI": "true",
               "DEVSERVER_APP": "env:app"}
    values, sources = settings(tmp_path, argv, environ)
    assert values[dest] == expected and sources[dest] == "command line"


def test_keys_take_underscores_too_and_no_x_flags_are_x_false(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.devserver]\nreload_include = ["*.yaml"]\nlivereload = false\n'
                                             'reload-strategy = "restart"\n')
    values, _ = settings(tmp_path, [])
    assert values["reload_include"] == ["*.yaml"] and values["no_livereload"] is True
    assert values["reload_strategy"] == "restart"


def test_every_option_is_a_setting_but_those_that_act_and_exit() -> None:
    keys = {option.key for option in options_of(build_parser())}
    assert {"app", "app-dir", "workers", "allowed-host", "reload-include", "reload-exclude", "tui", "reload",
            "reload-strategy", "env-file", "https", "ssl-certfile", "ssl-keyfile"} <= keys
    assert not keys & {"help", "version", "print-config", "print-ca"}


def test_an_option_added_to_the_parser_gets_its_layers(tmp_path: Path) -> None:
    parser = build_parser()
    parser.add_argument("--trace-file")  # as another part of the server would add one
    (tmp_path / "pyproject.toml").write_text('[tool.devserver]\ntrace-file = "trace.out"\n')
    resolved = resolve(parser, [], {}, str(tmp_path))
    assert resolved.args.trace_file == "trace.out" and resolved.sources["trace_file"] == "pyproject.toml"
    resolved = resolve(parser, [], {"DEVSERVER_TRACE_FILE": "env.out"}, str(tmp_path))
    assert resolved.args.trace_file == "env.out"


@pytest.mark.parametrize(("table", "message"), [
    ('workers = "many"', "pyproject.toml [tool.devserver] workers: must be a whole number from 1 to 128, not 'many'"),
    ("workers = 0", "pyproject.toml [tool.devserver] workers: must be a whole number from 1 to 128, not '0'"),
    ('tui = "no"', "pyproject.toml [tool.devserver] tui: expected true or false, got 'no'"),
    ('allowed-host = "a.test"', "pyproject.toml [tool.devserver] allowed-host: expected a list"),
    ('lifespan = "sometimes"', "pyproject.toml [tool.devserver] lifespan: expected one of auto, on, off, got 'sometimes'"),
    ("wrokers = 2", "pyproject.toml [tool.devserver]: unknown key 'wrokers' (did you mean workers?)"),
    ("no-tui = true", "pyproject.toml [tool.devserver]: unknown key 'no-tui' (did you mean tui?)"),
    ("workers = [", "pyproject.toml: not valid TOML"),
])
def test_a_bad_pyproject_value_is_one_line(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.devserver]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, [])
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("variable", "text", "message"), [
    ("DEVSERVER_WORKERS", "many", "DEVSERVER_WORKERS: must be a whole number from 1 to 128, not 'many'"),
    ("DEVSERVER_RELOAD", "maybe", "DEVSERVER_RELOAD: expected true or false, got 'maybe'"),
    ("DEVSERVER_ALLOWED_HOST", "ok.test,bad host", "DEVSERVER_ALLOWED_HOST: 'bad host' is not a host name"),
    ("DEVSERVER_PORT", "http", "DEVSERVER_PORT: 'http' is not a port number"),
])
def test_a_bad_variable_is_one_line(tmp_path: Path, variable: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, [], {variable: text})
    assert str(caught.value).startswith(message)


def test_other_devserver_variables_are_not_settings(tmp_path: Path) -> None:
    values, _ = settings(tmp_path, [], {"DEVSERVER_RESTART_TIMELINE": "1"})
    assert values["workers"] == 2


@pytest.mark.parametrize(("layer", "expected"), [
    ({"pyproject": 'workers = "many"'}, "devserver: error: pyproject.toml [tool.devserver] workers: must be"),
    ({"env": {"DEVSERVER_WORKERS": "many"}}, "devserver: error: DEVSERVER_WORKERS: must be a whole number"),
    ({"argv": ["--workers", "many"]}, "devserver: error: argument --workers: must be a whole number"),
])
def test_each_layer_s_bad_value_exits_2_with_one_line(tmp_path: Path, layer: dict[str, object], expected: str) -> None:
    if "pyproject" in layer:
        (tmp_path / "pyproject.toml").write_text(f"[tool.devserver]\n{layer['pyproject']}\n")
    argv = layer.get("argv", [])
    assert isinstance(argv, list)
    done = run(tmp_path, *argv, "--print-config", env=layer.get("env"))  # type: ignore[arg-type]
    assert done.returncode == 2, done
    assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_print_config_says_where_each_value_came_from(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / ".env").write_text("SECRET_KEY=hunter2\nexport PLAIN='visible?'\nEXPORTED=from-file\n")
    done = run(tmp_path, "--print-config", "--threads", "4",
               env={"DEVSERVER_ALLOWED_HOST": "env.test", "EXPORTED": "from-shell"})
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line and not line.startswith(" ")}
    assert rows["workers"][1:] == ["3", "pyproject.toml"]
    assert rows["app"][1:] == ['"myshop:create_app()"', "pyproject.toml"]
    assert rows["allowed-host"][1:] == ['["env.test"]', "DEVSERVER_ALLOWED_HOST"]
    assert rows["threads"][1:] == ["4", "command", "line"]
    assert rows["port"][2:] == ["default"] and rows["tui"][1:] == ["false", "pyproject.toml"]
    # The .env variables: named, never their values; the exported one wins over the file's.
    assert "hunter2" not in done.stdout and "visible" not in done.stdout and "from-" not in done.stdout
    env_rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert set(env_rows) == {"SECRET_KEY", "PLAIN", "EXPORTED"}
    assert "********" in env_rows["PLAIN"] and "not used: set in the environment" in env_rows["EXPORTED"]
    assert "not used" not in env_rows["SECRET_KEY"]


def test_a_named_env_file_that_is_missing_is_one_line(tmp_path: Path) -> None:
    done = run(tmp_path, "--env-file", "nothere.env", "--no-tui", "--port", "0")
    assert done.returncode == 2 and done.stderr == "devserver: error: env-file 'nothere.env' is not a file\n"


def test_no_env_file_turns_the_project_s_off(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=1\n")
    values, sources = settings(tmp_path, ["--no-env-file"])
    assert values["env_file"] == [] and sources["env_file"] == "command line"
    (tmp_path / "pyproject.toml").write_text("[tool.devserver]\nenv-file = []\n")
    assert settings(tmp_path, [])[0]["env_file"] == []
