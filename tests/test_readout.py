"""The read-only view (devserver.readout): the supervisor's store, its Unix socket, `devserver requests`, `devserver mcp`.

Real parts: a `--no-tui` server with 2 workers in a subprocess, real HTTP requests
on a keep-alive session, the commands run as subprocesses in the site's folder,
and the MCP server driven by the mcp client library over stdio.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from conftest import wait_until
from layers import may_import

from devserver.ipc.events import RequestEvent
from devserver.readout.queries import ServerInfo, answer
from devserver.readout.store import Filters, RequestStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return folder


def _env(runtime: Path) -> dict[str, str]:
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(ROOT)}


def _command(args: list[str], cwd: Path, runtime: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devserver", *args], cwd=cwd, env=_env(runtime),
                          capture_output=True, text=True, timeout=60)


def _json_lines(args: list[str], cwd: Path, runtime: Path) -> list[dict]:
    done = _command(["requests", "--json", *args], cwd, runtime)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def served(server_factory, site: Path, runtime: Path):
    """A 2-worker server with four requests answered: two echoes, a missing file, a failing app."""
    server = server_factory("--workers", "2", env=_env(runtime))
    with requests.Session() as session:
        sent = [session.get(f"{server.url}echo.py/one?x=1"), session.post(f"{server.url}echo.py/two", data=b"hello"),
                session.get(f"{server.url}missing.txt"), session.get(f"{server.url}boom.py")]
    assert [r.status_code for r in sent] == [200, 200, 404, 500]
    wait_until(lambda: len(_json_lines(["--last", "10"], site, runtime)) == 4)
    return server


def test_requests_json_lists_what_was_requested(served, site: Path, runtime: Path) -> None:
    records = _json_lines(["--last", "5"], site, runtime)
    shown = sorted((r["method"], r["target"], r["status"]) for r in records)
    assert shown == [("GET", "/boom.py", 500), ("GET", "/echo.py/one?x=1", 200), ("GET", "/missing.txt", 404),
                     ("POST", "/echo.py/two", 200)]
    assert {r["type"] for r in records} == {"RequestEvent"}  # the JSON log line's shape
    assert len({r["worker_pid"] for r in records} - {0}) >= 1
    assert len({r["request_id"] for r in records}) == 4
    assert len(_json_lines(["--last", "2"], site, runtime)) == 2


def test_errors_and_route_filters(served, site: Path, runtime: Path) -> None:
    errors = _json_lines(["--errors"], site, runtime)
    assert [(r["target"], r["status"]) for r in errors] == [("/boom.py", 500)]
    assert "boom from the fixture app" in errors[0]["traceback"]
    assert sorted(r["target"] for r in _json_lines(["--route", "/echo.py"], site, runtime)) == \
        ["/echo.py/one?x=1", "/echo.py/two"]
    assert [r["target"] for r in _json_lines(["--route", "POST /echo.py"], site, runtime)] == ["/echo.py/two"]
    assert _json_lines(["--route", "/echo"], site, runtime) == []  # a path prefix, not a string prefix


def test_table_by_default(served, site: Path, runtime: Path) -> None:
    done = _command(["requests"], site, runtime)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["time", "id", "method", "target", "status", "ms", "queries", "calls"]
    assert sorted(row.split()[3] for row in rows) == ["/boom.py", "/echo.py/one?x=1", "/echo.py/two", "/missing.txt"]


def test_found_by_port_from_another_folder(served, tmp_path_factory: pytest.TempPathFactory, runtime: Path) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # not below the site
    assert _command(["requests"], elsewhere, runtime).returncode == 1
    records = _json_lines(["--port", str(served.port)], elsewhere, runtime)
    assert len(records) == 4
    assert len(_json_lines([], served.cwd / "dynamic", runtime)) == 4  # a folder below the server's finds it


def test_socket_folder_is_private(served, runtime: Path) -> None:
    folder = runtime / "devserver"
    info = folder.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    sockets = list(folder.glob("*.sock"))
    assert [path.name.split("-")[0] for path in sockets] == [str(served.port)]
    assert stat.S_IMODE(sockets[0].stat().st_mode) & 0o077 == 0


def test_socket_removed_on_stop_and_clear_error(server_factory, site: Path, runtime: Path) -> None:
    server = server_factory("--workers", "2", env=_env(runtime))
    assert list((runtime / "devserver").glob("*.sock"))
    assert server.stop() == 0
    assert list((runtime / "devserver").glob("*.sock")) == []
    done = _command(["requests"], site, runtime)
    assert done.returncode == 1
    assert done.stderr.startswith("devserver requests: error: no devserver is running for ")
    assert len(done.stderr.splitlines()) == 1


def test_stale_socket_of_a_dead_server_is_cleaned(server_factory, site: Path, runtime: Path) -> None:
    import socket

    folder = runtime / "devserver"
    folder.mkdir(mode=0o700)
    stale = folder / "1-0123456789abcdef.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(stale))
    dead.close()  # bound, never listening: what a killed server leaves
    server_factory("--workers", "2", env=_env(runtime))
    assert not stale.exists()


def test_bad_route_is_one_line(site: Path, runtime: Path) -> None:
    done = _command(["requests", "--route", "nopath"], site, runtime)
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1 and "route must be a path" in done.stderr


def test_no_http_route_reaches_the_store(served) -> None:
    assert not may_import("worker", "readout") and not may_import("handlers", "readout")
    for path in ("/__devserver__/requests", "/__devserver__/readout", "/__devserver__/mcp"):
        response = requests.get(served.url.rstrip("/") + path, timeout=10)
        assert response.status_code == 404
        assert "echo.py" not in response.text


def test_mcp_over_stdio(served, site: Path, runtime: Path) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    async def talk() -> tuple[set[str], list[dict], dict, list[dict]]:
        params = StdioServerParameters(command=sys.executable, args=["-m", "devserver", "mcp"], cwd=str(site),
                                       env=_env(runtime))
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            listed = await session.call_tool("list_requests", {"last": 10})
            rows = listed.structured_content["result"]
            boom = next(row for row in rows if row["target"] == "/boom.py")
            got = await session.call_tool("get_request", {"request_id": boom["request_id"]})
            errors = await session.call_tool("list_errors", {})
            return tools, rows, json.loads(got.content[0].text), errors.structured_content["result"]

    tools, rows, record, errors = asyncio.run(talk())
    assert {"list_requests", "get_request", "list_errors"} <= tools
    assert sorted(row["target"] for row in rows) == ["/boom.py", "/echo.py/one?x=1", "/echo.py/two", "/missing.txt"]
    assert record["status"] == 500 and "boom from the fixture app" in record["traceback"]
    assert [row["target"] for row in errors] == ["/boom.py"]
    boom = next(row for row in rows if row["target"] == "/boom.py")
    assert (record["request_id"], record["method"], record["target"]) == (boom["request_id"], "GET", "/boom.py")


def test_mcp_without_the_package_says_how_to_install(site: Path, runtime: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "mcp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no mcp here')\n")
    env = {**_env(runtime), "PYTHONPATH": f"{ROOT}{os.pathsep}{shadow.parent}"}
    done = subprocess.run([sys.executable, "-m", "devserver", "mcp"], cwd=site, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == "devserver: error: devserver mcp needs the mcp package: pip install 'devserver[mcp]'\n"


def _event(number: int, status: int = 200, target: str = "/") -> RequestEvent:
    return RequestEvent(time=float(number), worker_pid=1, client="127.0.0.1:1", method="GET", target=target,
                        http_version="HTTP/1.1", status=status, bytes_sent=0, duration_ms=1.0, request_id=f"id{number}")


def test_store_is_bounded_and_keeps_failures_longer() -> None:
    store = RequestStore(recent=10, errors=3)
    store.add([_event(n, 500 if n in (1, 2, 50) else 200) for n in range(1, 1001)])
    assert store.counts() == (10, 3)
    kept = store.select(Filters(last=100))
    assert [k.id for k in kept] == ["id1", "id2", "id50", *(f"id{n}" for n in range(991, 1001))]
    assert store.get("id2") is not None and store.get("id500") is None


def test_requests_without_an_id_are_named_by_their_number_across_batches_and_a_recent_failure_is_listed_once() -> None:
    store = RequestStore(recent=3, errors=2)
    unnamed = [replace(_event(n, 500 if n in (2, 6) else 200), request_id="") for n in range(1, 8)]
    store.add(unnamed[:4])
    store.add([])
    store.add(unnamed[4:])  # numbers go on from the batch before: 5, 6, 7
    assert [k.id for k in store.select(Filters(last=100))] == ["r2", "r5", "r6", "r7"]  # r6: a failure, recent
    assert [k.id for k in store.select(Filters(last=100, errors=True))] == ["r2", "r6"]
    assert store.get("r5") is not None and store.get("r5").event.time == 5.0 and store.get("r4") is None


def test_protocol_in_memory() -> None:
    store = RequestStore()
    store.add([_event(1, target="/api/x\x1b[31m"), _event(2, 500, "/apiary")])
    info = ServerInfo("http://127.0.0.1:1/", "/", 2)

    def ask(line: bytes) -> dict:
        return json.loads(answer(store, info, line))

    assert [r["target"] for r in ask(b'{"query": "list", "route": "/api"}\n')["requests"]] == ["/api/x\x1b[31m"]
    assert [r["request_id"] for r in ask(b'{"query": "list", "errors": true}')["requests"]] == ["id2"]
    assert ask(b'{"query": "get", "id": "id1"}')["request"]["target"] == "/api/x\x1b[31m"
    assert ask(b'{"query": "info"}')["kept"] == 2
    for bad, says in ((b"not json", "JSON object"), (b'{"query": "eval", "code": "1"}', "unknown query"),
                      (b'{"query": "list", "last": -1}', "last must be"), (b'{"query": "get", "id": "x"}', "no request"),
                      (b"x" * 70000, "longer than")):
        reply = ask(bad)
        assert reply["ok"] is False and says in reply["error"]


def test_table_escapes_control_characters() -> None:
    from devserver.readout.client import table

    shown = table([{"time": 0, "request_id": "a", "method": "GET", "target": "/x\x1b[2J", "status": 200,
                    "duration_ms": 1.0}])
    assert "\x1b" not in shown and "\\x1b[2J" in shown
