"""The server as a terminal program: stdout that goes away, escaped output, JSON lines,
folders, exposure warnings, worker deaths, reload entries, command-line options."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import LISTENING, LiveServer, children_of, does_not_block, http_exchange, pid_exists, wait_until

DRAIN_LIMIT = 5.0 + 2.0  # Config.shutdown_timeout, plus the supervisor's grace before SIGKILL
ATTACK_QUERY = "q=%1b%5b2J&b=%1b]0;pwned%07"  # clear the screen; rename the terminal window

PRINTER_APP = '''
import sys
from urllib.parse import unquote


def application(environ, start_response):
    query = unquote(environ["QUERY_STRING"])
    print("printed", query)
    print("to stderr", query, file=sys.stderr)
    environ["wsgi.errors"].write("via wsgi.errors " + query + "\\n")
    if "boom" in query:
        raise ValueError("raised " + query)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def get(port: int, target: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        return http_exchange(sock, request)[0][0]


def all_gone(proc: subprocess.Popen[bytes], pids: list[int]) -> bool:
    """``proc`` has exited (reaped here) and no process of ``pids`` is left, zombies included."""
    return proc.poll() is not None and not any(pid_exists(pid) for pid in pids)


def still_running(pids: list[int]):
    def describe() -> str:
        alive = [pid for pid in pids if pid_exists(pid)]
        states = {}
        for pid in alive:
            try:
                states[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                states[pid] += " " + Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:80]
            except OSError:
                pass
        return f"still running: {states}"
    return describe


def start_raw(site: Path, *args: str, stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen[bytes], int]:
    """``devserver --no-tui`` with stdout on a pipe we control; returns it once listening, and its port."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "devserver", "--no-tui", "--port", "0", *args], cwd=site,
                            stdout=subprocess.PIPE, stderr=stderr, env=env)
    assert proc.stdout is not None
    found: list[int] = []

    def read_until_listening() -> None:
        for raw_line in proc.stdout:  # type: ignore[union-attr]
            match = LISTENING.search(raw_line.decode("utf-8", "replace"))
            if match:
                found.append(int((match.group(1) or match.group(2)).rstrip("/").rsplit(":", 1)[1]))
                return

    reader = threading.Thread(target=read_until_listening, daemon=True)
    reader.start()
    reader.join(30)
    if not found:
        proc.kill()
        proc.wait(5)
        pytest.fail("devserver did not start")
    return proc, found[0]


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if pid_exists(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# -- item 10: shutdown whatever stdout does ---------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_shutdown_completes_after_the_stdout_reader_went_away(site: Path, tmp_path: Path, sig: int) -> None:
    """``devserver --no-tui | head``: head exits, then Ctrl-C (or SIGTERM) must still end every process."""
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        proc, port = start_raw(site, "--workers", "2", stderr=stderr)
        pids = [proc.pid, *children_of(proc.pid)]
        try:
            assert len(pids) >= 3
            proc.stdout.close()  # type: ignore[union-attr]  # the reader is gone: writes now fail with EPIPE
            for _ in range(3):  # log lines written into the broken pipe
                assert get(port, "/one_k.txt") == 200
            assert get(port, "/echo.py?printed=1") == 200
            proc.send_signal(sig)
            wait_until(lambda: all_gone(proc, pids), DRAIN_LIMIT + 3, still_running(pids))
            assert proc.wait(1) == 0
        finally:
            kill_all(pids)
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text(errors="replace")


def test_shutdown_completes_while_stdout_is_not_being_read(site: Path) -> None:
    """``devserver --no-tui | less`` with the pager waiting: the pipe is full and stays open."""
    proc, port = start_raw(site, "--workers", "1")
    pids = [proc.pid, *children_of(proc.pid)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            # ~1500 log lines of ~100 bytes: more than a pipe holds (64 KiB), nobody reads them.
            for _ in range(15):
                burst = b"GET /one_k.txt?padding=" + b"x" * 40 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
                assert [status for status, _, _ in http_exchange(sock, burst * 100, responses=100)] == [200] * 100
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: all_gone(proc, pids), DRAIN_LIMIT + 3, still_running(pids))
        assert proc.wait(1) == 0
    finally:
        kill_all(pids)
        proc.stdout.close()  # type: ignore[union-attr]


# -- item 11: control characters from requests and apps are escaped on the console ----------------------

def test_console_shows_request_and_app_text_with_control_characters_escaped(server_factory, site: Path) -> None:
    (site / "dynamic" / "printer.py").write_text(PRINTER_APP)
    server = server_factory("--workers", "1")
    raw_header = b"GET /printer.py?" + ATTACK_QUERY.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with server.connect() as sock:
        assert http_exchange(sock, raw_header)[0][0] == 200
    with server.connect() as sock:
        boom = b"GET /printer.py?boom&" + ATTACK_QUERY.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        assert http_exchange(sock, boom)[0][0] == 500
    server.wait_for(r"ValueError: raised boom")
    server.wait_for(r"via wsgi.errors boom")
    output = "\n".join(server.lines)
    assert "\x1b" not in output and "\x07" not in output
    for what in ("printed", "to stderr", "via wsgi.errors", "ValueError: raised boom"):
        line = server.wait_for(re.escape(what))
        assert "\\x1b[2J" in line and "\\x1b]0;pwned\\x07" in line, line


# -- item 12: --log-format json is JSON, whatever apps print ------------------------------------------------

def test_json_log_stays_json_when_apps_print(server_factory, site: Path) -> None:
    (site / "dynamic" / "printer.py").write_text(PRINTER_APP)
    server = server_factory("--workers", "1", "--log-format", "json")
    assert get(server.port, "/printer.py?" + ATTACK_QUERY) == 200
    assert get(server.port, "/printer.py?boom") == 500
    server.wait_for(r'"text": "to stderr boom"')
    server.wait_for(r'"text": "printed boom"')
    assert server.stop() == 0
    records = [json.loads(line) for line in server.lines if line.strip()]  # each line parses, or this fails
    texts = [r["text"] for r in records if r["type"] == "LogEvent"]
    assert "printed q=\x1b[2J&b=\x1b]0;pwned\x07" in texts  # the app's text, whole ...
    assert not any("\x1b" in line or "\x07" in line for line in server.lines)  # ... but escaped by JSON
    assert any("\\u001b]0;pwned\\u0007" in line for line in server.lines)
    assert {r["type"] for r in records} >= {"ServerEvent", "WorkerEvent", "RequestEvent", "LogEvent"}


# -- item 16: a folder without the usual layout ------------------------------------------------------------------

def test_a_folder_with_neither_html_page_nor_dynamic_is_served_like_http_server(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("plain files\n")
    server = LiveServer(["--workers", "1"], tmp_path).start()
    try:
        note = server.wait_for(r"no html_page/ or dynamic/ folder here")
        assert "serving the files of this folder" in note
        assert get(server.port, "/notes.txt") == 200
    finally:
        server.stop()


@pytest.mark.parametrize("present,served,missing", [
    ("html_page", "/index.html", "/echo.py"),
    ("dynamic", "/echo.py", "/index.html"),
])
def test_a_folder_with_one_of_the_two_serves_what_exists(tmp_path: Path, present: str, served: str,
                                                          missing: str) -> None:
    (tmp_path / "html_page").mkdir()
    (tmp_path / "html_page" / "index.html").write_text("<p>hi</p>")
    (tmp_path / "dynamic").mkdir()
    (tmp_path / "dynamic" / "echo.py").write_text((Path(__file__).parent / "fixtureapps" / "echo.py").read_text())
    absent = "dynamic" if present == "html_page" else "html_page"
    (tmp_path / absent).rename(tmp_path / "elsewhere")
    server = LiveServer(["--workers", "1"], tmp_path).start()
    try:
        server.wait_for(rf"no {absent}/ folder here: serving the \w+ of {present}/ only")
        assert get(server.port, served) == 200
        assert get(server.port, missing) == 404
    finally:
        server.stop()


@pytest.mark.parametrize("option", ["--root", "--dynamic"])
def test_an_explicit_folder_that_does_not_exist_is_a_one_line_error(tmp_path: Path, option: str) -> None:
    result = subprocess.run([sys.executable, "-m", "devserver", "--no-tui", option, "nowhere"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"devserver: error: {option} 'nowhere' is not a folder "
                                          "(see devserver --help)"]


# -- item 17: listening beyond loopback is never silent ------------------------------------------------------------

def test_a_non_loopback_bind_warns_and_names_the_network_urls(server_factory) -> None:
    server = server_factory("--workers", "1", "--host", "0.0.0.0")
    warning = server.wait_for(r"warning: listening on 0\.0\.0\.0")
    assert "tracebacks" in warning and "--host 127.0.0.1" in warning
    urls = server.wait_for(r"on your network: |no network address found")
    for host, port in re.findall(r"http://([\d.]+):(\d+)/", urls):
        assert int(port) == server.port
        with socket.socket() as probe:  # an address of this machine (bindable), not a loopback one
            probe.bind((host, 0))
        assert not host.startswith("127.")
    assert get(server.port, "/one_k.txt") == 200


def test_a_loopback_bind_has_no_warning(server) -> None:
    assert get(server.port, "/one_k.txt") == 200
    server.wait_for(r"GET /one_k.txt 200")
    assert not [line for line in server.lines if "warning" in line or "on your network" in line]


# -- item 18: a worker's death names what it was serving ---------------------------------------------------------

HANG_APP = '''
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    marker = parse_qs(environ["QUERY_STRING"])["marker"][0]
    open(marker, "w").close()
    time.sleep(30)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"late"]
'''


def test_a_worker_killed_mid_request_is_logged_with_that_request(server_factory, site: Path, tmp_path: Path) -> None:
    (site / "dynamic" / "hang.py").write_text(HANG_APP)
    server = server_factory("--workers", "1")
    victim = server.worker_pids()[0]
    marker = tmp_path / "in-app"
    target = f"/hang.py?marker={marker}&x=%1b"

    def doomed() -> None:
        try:
            with server.connect(timeout=40) as sock:
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
                sock.recv(100)
        except OSError:
            pass

    client = threading.Thread(target=doomed, daemon=True)
    client.start()
    wait_until(marker.exists, 20, "the app being called")
    os.kill(victim, signal.SIGKILL)
    line = server.wait_for(rf"worker 0 \(pid {victim}\) died \(exit code -9\) while serving GET ")
    assert f"GET {target} (started " in line
    client.join(10)


# -- item 14: one reload entry per module per failure ------------------------------------------------------------

def test_a_module_that_fails_to_import_gets_one_entry_per_failure(server_factory, site: Path) -> None:
    module = site / "dynamic" / "broken.py"
    module.write_text("raise RuntimeError('not today')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    server = server_factory("--workers", "2", env=env)

    def failures() -> list[str]:
        return [line for line in server.lines if line.startswith("reload failed")]

    def hammer(count: int) -> None:
        start = len(server.lines)
        for _ in range(count):
            assert get(server.port, "/broken.py") == 500
        wait_until(lambda: sum("GET /broken.py 500" in line for line in server.lines[start:]) == count, 10,
                   "every request line logged")

    hammer(25)
    assert len(failures()) == 1 and failures()[0].startswith("reload failed broken.py"), failures()
    module.write_text("raise RuntimeError('still not today')\n")  # a save: an entry of its own, then a new error
    server.wait_for(r"^reloaded broken")
    hammer(10)
    assert len(failures()) == 2 and "still not today" in "\n".join(server.lines[-40:])
    module.write_text("raise RuntimeError('still not today')  # same error\n")
    server.wait_for(r"^reloaded broken", start=len(server.lines) - 1)
    hammer(10)
    assert len(failures()) == 3  # the same error again, but after a reload: the failure is news


# -- item 19 (command line): --allowed-host ------------------------------------------------------------------------

def test_allowed_hosts_reach_the_config() -> None:
    from devserver.cli import build_parser, config_from_args

    parser = build_parser()
    args = parser.parse_args(["--no-tui", "--root", ".", "--dynamic", ".", "--allowed-host", "Example.test",
                              "--allowed-host", "*", "--allowed-host", "[::1]", "--allowed-host", "::2",
                              "--allowed-host", "10.0.0.7", "--allowed-host", "example.test"])
    config = config_from_args(args, parser)
    assert config.allowed_hosts == ("example.test", "*", "[::1]", "[::2]", "10.0.0.7")  # IPv6 as Host writes it
    assert config_from_args(parser.parse_args(["--root", ".", "--dynamic", "."]), parser).allowed_hosts == ()


@pytest.mark.parametrize("value,message", [
    ("example.test:8000", "without a port"),
    ("exa mple", "is not a host name"),
    ("http://example.test/", "is not a host name"),
    ("", "is not a host name"),
    (".example.test", "is not a host name"),
])
def test_a_bad_allowed_host_is_a_one_line_error(value: str, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "devserver", "--no-tui", "--allowed-host", value],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_help_documents_allowed_host() -> None:
    result = subprocess.run([sys.executable, "-m", "devserver", "--help"], capture_output=True, text=True, timeout=30)
    assert "--allowed-host NAME" in result.stdout and "'*'" in result.stdout


def test_allowed_host_reaches_the_workers(server_factory) -> None:
    server = server_factory("--workers", "1", "--allowed-host", "Dev.Example.TEST", "--allowed-host", "[::2]")

    def status(host: str) -> int:
        with server.connect() as sock:
            request = f"GET /one_k.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            return http_exchange(sock, request)[0][0]

    assert status("dev.example.test:8000") == 200
    assert status("[::2]:80") == 200
    assert status("other.example.test") == 403


# -- the console's writer: bounded waits, then drops that are reported --------------------------------------

def test_output_writer_waits_once_for_a_stalled_reader_then_drops_and_says_so() -> None:
    from devserver.console.output import OutputWriter

    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    writer = OutputWriter(stream, limit=1000)
    try:
        line = "x" * 99 + "\n"
        started = time.monotonic()
        while time.monotonic() - started < 10 and writer.dropped == 0:  # fill the pipe (64 KiB), then the queue
            writer.put(line, wait=0.3)
        assert writer.dropped > 0, "nothing was ever dropped"
        dropped = writer.dropped
        # Stalled: no more waiting, each put is dropped at once, even one allowed to wait an hour.
        does_not_block(lambda: [writer.put(line, wait=3600) for _ in range(50)])
        assert writer.dropped == dropped + 50
        received = b""
        os.set_blocking(read_end, False)
        deadline = time.monotonic() + 10
        while b"log lines dropped" not in received:  # the reader is back: the lines flow, with the count
            assert time.monotonic() < deadline, received[-300:]
            try:
                received += os.read(read_end, 1 << 16)
            except BlockingIOError:
                writer.put(line)
                time.sleep(0.01)
        assert re.search(rb"\xe2\x80\xa6 (\d+) log lines dropped: stdout did not keep up\n", received)
    finally:
        writer.close(1)
        stream.close()
        os.close(read_end)


def test_output_writer_goes_quiet_when_the_reader_is_gone() -> None:
    from devserver.console.output import OutputWriter

    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    writer = OutputWriter(stream)
    os.close(read_end)
    writer.put("into the void\n")
    wait_until(lambda: writer.broken, 5, "EPIPE being noticed")
    writer.put("more\n")
    stream.write("a print after the reader left\n")
    stream.flush()  # the descriptor now leads to /dev/null: no BrokenPipeError
    writer.close(1)
    stream.close()
