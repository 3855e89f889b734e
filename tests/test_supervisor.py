"""Supervisor and command line: binding, restarts, clean shutdown, user errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import h11
import pytest
from conftest import REPO, LiveServer, children_of, http_exchange, pid_exists, read_responses, wait_until


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devserver", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def get_status(port: int, target: str = "/one_k.txt", host: str = "127.0.0.1") -> int:
    with socket.create_connection((host, port), timeout=5) as sock:
        return http_exchange(sock, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")[0][0]


def test_help_documents_every_option() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("APP", "--host", "--port", "--root", "--dynamic", "--workers", "--no-tui", "--no-reload",
                   "--log-format", "--max-body", "--no-livereload"):
        assert option in result.stdout


@pytest.mark.parametrize("args,message", [
    (["--port", "http"], "is not a port number"),
    (["--port", "70000"], "is not a port number"),
    (["--workers", "0"], "must be a whole number from 1 to 128, not '0'"),
    (["--log-format", "xml"], "invalid choice"),
    (["--root", "no/such/folder"], "is not a folder"),
    (["--max-body", "lots"], "is not a size"),
    (["--bogus"], "unrecognized arguments"),
    (["site:app("], "is not a name or a call like factory()"),
    (["nosuchmodule:app"], "no module named 'nosuchmodule'"),
    (["site:nosuchattr"], "no callable 'nosuchattr'"),
])
def test_bad_command_lines_say_what_is_wrong_without_a_traceback(args: list[str], message: str) -> None:
    result = run_cli("--no-tui", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr  # no usage dump
    assert "Traceback" not in result.stderr + result.stdout


def test_port_in_use_is_a_one_line_error(server) -> None:
    result = run_cli("--no-tui", "--port", str(server.port))
    assert result.returncode == 1
    assert result.stderr.strip() == f"devserver: error: port {server.port} is already in use on 127.0.0.1 (choose another with --port)"
    assert "Traceback" not in result.stdout


def test_port_of_a_multi_worker_server_is_in_use_for_another(server_factory) -> None:
    # Workers listen on sockets of their own (SO_REUSEPORT): a second server must still be refused.
    first = server_factory("--workers", "2")
    result = run_cli("--no-tui", "--port", str(first.port), "--workers", "2")
    assert result.returncode == 1
    assert result.stderr.strip() == f"devserver: error: port {first.port} is already in use on 127.0.0.1 (choose another with --port)"
    assert get_status(first.port) == 200


def test_a_burst_of_keepalive_connections_is_spread_over_the_workers(server_factory) -> None:
    # A load tester or a browser opens its connections at once and keeps them: with one shared socket the
    # first worker to wake accepted them all, and the other idled for the whole run.
    server = server_factory("--workers", "2")
    pids = server.worker_pids()
    assert len(pids) == 2
    count = 64
    conns = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(count)]
    try:
        for number, sock in enumerate(conns):
            sock.sendall(f"GET /one_k.txt?burst={number} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        for sock in conns:
            assert read_responses(sock, 1)[0][0] == 200
    finally:
        for sock in conns:
            sock.close()
    served = {pid: 0 for pid in pids}
    for number in range(count):
        line = server.wait_for(rf"/one_k\.txt\?burst={number} .* pid \d+")
        served[int(line.rsplit("pid ", 1)[1].split()[0])] += 1
    # Dealt by a hash of the addresses: 64 connections put fewer than 12 on a worker about once in 10^6 runs.
    assert min(served.values()) >= 12, served


def test_bad_host_is_a_one_line_error() -> None:
    result = run_cli("--no-tui", "--port", "0", "--host", "no-such-host.invalid")
    assert result.returncode == 1
    assert result.stderr.startswith("devserver: error: cannot listen on host 'no-such-host.invalid'")
    assert "Traceback" not in result.stderr
    result = run_cli("--no-tui", "--port", "0", "--host", "192.0.2.77")
    assert result.returncode == 1 and "is not available on this machine" in result.stderr


def test_ipv6_loopback(server_factory) -> None:
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6")
    server = server_factory("--host", "::1", "--workers", "1")
    assert server.url.startswith("http://[::1]:")
    assert get_status(server.port, host="::1") == 200


def test_defaults_bind_to_loopback_only(server) -> None:
    assert server.url.startswith("http://127.0.0.1:")


def test_killed_worker_is_replaced_and_every_request_is_answered(server_factory) -> None:
    """The replacement's speed is not asserted (timed assertions belong to bench/): a loaded machine (a load
    average of 18 once) stretched it past the 1.5 s this test used to allow, and the suite failed for it."""
    server = server_factory("--workers", "2")
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    server.wait_for(rf"pid (?!{victim}\b)\d+ restarted", timeout=10)
    # Keep asking until every answer comes from a live worker.
    while True:
        assert get_status(server.port) == 200
        if victim not in server.worker_pids() and len(server.worker_pids()) == 2:
            break
        assert time.monotonic() - killed < 10, "the killed worker was not replaced"
    server.wait_for(rf"pid {victim} exited")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_leaves_no_process_behind(server_factory, sig: int) -> None:
    server = server_factory("--workers", "2")
    children = children_of(server.proc.pid)
    assert len(children) >= 2
    assert server.stop(sig) == 0
    wait_until(lambda: not any(pid_exists(pid) for pid in children), 5, "every child process ending")


def test_in_flight_request_finishes_during_shutdown(server_factory) -> None:
    server = server_factory("--workers", "1")
    result: dict[str, object] = {}

    def slow() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            request = b"GET /slow.py?s=1.5&started=inflight HTTP/1.1\r\nHost: localhost\r\n\r\n"
            result["response"] = http_exchange(sock, request, timeout=30)[0]

    thread = threading.Thread(target=slow)
    thread.start()
    marker = server.cwd / "inflight"
    wait_until(marker.exists, 20, "the slow request reaching the app")
    server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # no longer serving new connections, soon after the signal
        try:
            get_status(server.port)
        except (OSError, h11.RemoteProtocolError):  # refused, or taken from the backlog and closed unanswered
            break
        time.sleep(0.02)
    else:
        pytest.fail("the server still accepted connections 10 s after SIGTERM")
    thread.join(30)
    assert server.proc.wait(10) == 0
    status, headers, body = result["response"]  # type: ignore[misc]
    assert status == 200 and body == b"slept 1.5"
    assert headers.get("connection") == "close"


def test_the_programmatic_api_serves_the_site(site: Path) -> None:
    code = (
        "from devserver import HTTPServer\n"
        "server = HTTPServer(root='html_page', dynamic='dynamic', workers=1)\n"
        "server.bind('127.0.0.1', 0)\n"
        "raise SystemExit(server.start(64))\n"
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=site, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    server = LiveServer([], site)
    server.proc = proc
    threading.Thread(target=server._read, daemon=True).start()
    line = server.wait_for(r"listening on http://127\.0\.0\.1:\d+/")
    port = int(line.split("127.0.0.1:")[1].split("/")[0])
    assert get_status(port) == 200
    assert server.stop() == 0


def test_json_log_format(server_factory) -> None:
    server = server_factory("--workers", "1", "--log-format", "json")
    get_status(server.port, "/one_k.txt?j=1")
    line = server.wait_for(r'"target": "/one_k.txt\?j=1"')
    import json

    record = json.loads(line)
    assert record["type"] == "RequestEvent" and record["status"] == 200 and record["bytes_sent"] > 1024


def test_python_m_and_console_script_are_the_same() -> None:
    script = Path(sys.executable).with_name("devserver")
    if not script.exists():
        import shutil

        found = shutil.which("devserver")
        assert found, "the devserver console script is not installed"
        script = Path(found)
    a = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    b = run_cli("--help")
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


def test_a_restarter_forgets_the_processes_it_told_to_end_once_they_have_ended() -> None:
    """Each kept Process holds descriptors: a server restarted all day keeps only those still running."""
    import multiprocessing

    from devserver.supervisor.warm import WarmRestarter

    ctx = multiprocessing.get_context("fork")
    ended = [ctx.Process(target=os._exit, args=(0,)) for _ in range(2)]
    running = ctx.Process(target=time.sleep, args=(30,))
    for process in (*ended, running):
        process.start()
    try:
        for process in ended:
            process.join(10)
            assert process.exitcode == 0
        restarter = WarmRestarter.__new__(WarmRestarter)  # only the bookkeeping of processes told to end
        restarter._ending = []
        restarter._told_to_end(ended)
        assert restarter._ending == ended  # none ended before it was told: kept until the next call looks
        restarter._told_to_end([running])
        assert restarter._ending == [running]
    finally:
        running.kill()
        running.join(10)


def test_a_warm_restart_swaps_the_workers_through_the_supervisors_typed_messages(tmp_path: Path) -> None:
    """start_loading says Go and lets Reloads reach the loading workers; take_over pauses and retires the
    current ones and says Serve to the new ones, or, once the supervisor is stopping, refuses."""
    import multiprocessing

    from devserver.ipc.config import Config
    from devserver.ipc.control import Go, Pause, Reload, Serve
    from devserver.supervisor.core import Supervisor, WorkerSlot

    ctx = multiprocessing.get_context("fork")
    supervisor = Supervisor(Config(root=str(tmp_path), dynamic=str(tmp_path)), sink=lambda batch: None)
    supervisor.generation = ctx.RawValue("Q", 0)
    processes, workers_ends = [], []

    def slot() -> WorkerSlot:
        receiver, sender = ctx.Pipe(duplex=False)
        events, _ = ctx.Pipe(duplex=False)
        process = ctx.Process(target=os._exit, args=(0,))
        process.start()
        processes.append(process)
        workers_ends.append(receiver)
        return WorkerSlot(0, process, sender, events, time.monotonic())

    try:
        old, new = slot(), slot()
        old_end, new_end = workers_ends
        supervisor.slots = [old]
        supervisor.start_loading([new])
        assert new_end.recv() == Go()
        supervisor.reload(["page"])
        assert old_end.recv() == new_end.recv() == Reload(1, ("page",), ())
        assert supervisor.worker_pids() == {old.pid}
        supervisor.reload(None)  # a message that comes before Serve is applied before serving

        assert supervisor.take_over([new], serve=True) == [old]
        assert supervisor.slots == [new] and old.retired and not new.retired
        assert supervisor.worker_pids() == {new.pid}
        assert [old_end.recv(), old_end.recv()] == [Reload(2, None, ()), Pause()]
        assert [new_end.recv(), new_end.recv()] == [Reload(2, None, ()), Serve()]
        assert not old_end.poll() and not new_end.poll()

        supervisor.start_loading([old])
        assert new_end.poll() is False and old_end.recv() == Go()
        assert supervisor.take_over([old], serve=False) is None  # superseded: the caller drops them
        assert supervisor.slots == [new] and not supervisor.loading
        supervisor.stop()
        assert supervisor.stopping
        assert supervisor.take_over([old], serve=True) is None and supervisor.slots == [new]
    finally:
        for process in processes:
            process.join(10)


def test_a_loaded_new_worker_applies_what_came_before_serve_then_serves() -> None:
    import multiprocessing

    from devserver.apps.project import await_takeover
    from devserver.ipc.control import PageChanged, Reload, Serve

    receiver, sender = multiprocessing.Pipe(duplex=False)
    for message in (Reload(3, None, ()), PageChanged("app", ("/",)), Serve(), Reload(4, None, ())):
        sender.send(message)
    assert await_takeover(receiver) == [Reload(3, None, ()), PageChanged("app", ("/",))]
    assert receiver.recv() == Reload(4, None, ())  # after Serve: the worker's loop reads it
    sender.close()
    with pytest.raises(SystemExit):  # let go instead of told to serve: the process ends
        await_takeover(receiver)
