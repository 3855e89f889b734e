"""The Python API (``devserver.HTTPServer``): mistakes raise documented exceptions; the README's snippet runs."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO, LiveServer, http_exchange, read_responses

from devserver import HTTPServer
from devserver.supervisor.listen import StartError


def get(port: int, target: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        (status, _, body), = http_exchange(
            sock, f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        return status, body


@pytest.mark.parametrize("keyword", ["root", "dynamic"])
def test_a_folder_that_does_not_exist_is_a_file_not_found_error(tmp_path: Path, keyword: str) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as caught:
        HTTPServer(**{keyword: str(missing)})
    assert caught.value.errno == errno.ENOENT and caught.value.filename == str(missing)
    assert f"HTTPServer({keyword}=...)" in str(caught.value)


@pytest.mark.parametrize("keyword", ["root", "dynamic"])
def test_a_file_given_as_a_folder_is_a_not_a_directory_error(tmp_path: Path, keyword: str) -> None:
    (tmp_path / "page.html").write_text("<p>hi</p>")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        HTTPServer(**{keyword: str(tmp_path / "page.html")})


def test_a_busy_port_raises_an_oserror_naming_the_address_without_the_command_lines_hint(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HTTPServer(root=str(tmp_path), dynamic=str(tmp_path), workers=1)
        with pytest.raises(OSError) as caught:
            server.bind("127.0.0.1", port)  # bind() binds: the error comes from it, before any start
        assert server.address is None
        unbound = HTTPServer(root=str(tmp_path), dynamic=str(tmp_path), workers=1, host="127.0.0.1", port=port)
        with pytest.raises(OSError) as caught_by_start:
            unbound.start(16)  # no bind() first: start() binds, and raises the same
    for error in (caught.value, caught_by_start.value):
        assert isinstance(error, StartError) and error.errno == errno.EADDRINUSE
        assert str(error) == f"port {port} is already in use on 127.0.0.1"  # no "--port": the API has none


def test_bind_takes_the_port_and_a_connection_made_before_start_is_served(site: Path) -> None:
    code = (
        "import sys\n"
        "from devserver import HTTPServer\n"
        "server = HTTPServer(root='html_page', dynamic='dynamic', workers=1)\n"
        "server.bind('127.0.0.1', 0)\n"
        "print('bound', server.address[1], flush=True)\n"
        "sys.stdin.readline()\n"
        "raise SystemExit(server.start(64))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=site, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    server = LiveServer([], site)
    server.proc = proc
    threading.Thread(target=server._read, daemon=True).start()
    try:
        port = int(server.wait_for(r"^bound \d+$").split()[1])
        with socket.socket() as rival, pytest.raises(OSError) as taken:
            rival.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE  # the port is the server's before start()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as early:  # waits in the backlog
            early.sendall(b"GET /one_k.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert proc.stdin is not None
            proc.stdin.write("\n")  # now start()
            proc.stdin.flush()
            (status, _, body), = read_responses(early, 1)
        assert (status, len(body)) == (200, 1024)
    finally:
        assert server.stop() == 0


def test_folders_left_out_are_chosen_as_the_command_line_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert HTTPServer().config.root == os.curdir  # neither html_page/ nor dynamic/: the folder itself
    (tmp_path / "html_page").mkdir()
    server = HTTPServer()
    assert server.config.root == "html_page" and not server.config.reload  # no dynamic/: nothing to reload
    assert any("no dynamic/ folder here" in note for note in server.config.notices)


def readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_snippet_serves_the_site(site: Path) -> None:
    code = readme_snippet()
    assert 'server.bind("127.0.0.1", 8899)' in code
    code = code.replace('server.bind("127.0.0.1", 8899)', 'server.bind("127.0.0.1", 0)')  # a free port
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=site, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    server = LiveServer([], site)
    server.proc = proc
    threading.Thread(target=server._read, daemon=True).start()
    try:
        line = server.wait_for(r"listening on http://127\.0\.0\.1:\d+/")
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert get(port, "/one_k.txt")[0] == 200
        assert get(port, "/echo.py")[0] == 200
    finally:
        assert server.stop() == 0
