"""Recorded bodies (devserver/capture.py) from real workers, and what the dashboard makes of them:
exact bodies, cut bodies, the bounded store, curl/HTTPie commands and HAR files."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from devserver.debug.capture import SEGMENTS, BodyRecorder, BodyStore
from devserver.ipc.config import Config
from devserver.ipc.events import Event, RequestEvent
from devserver.supervisor.core import Supervisor
from tui.recorded.bodies import load_body, read_record
from tui.recorded.export import ExportError, curl_command, har_log, httpie_command
from tui.recorded.replay import replay_request


class LiveSupervisor:
    """A real supervisor and workers in this process's care; events are collected."""

    def __init__(self, config: Config) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self.supervisor = Supervisor(config, sink=self._sink)

    def _sink(self, events: list[Event]) -> None:
        with self._cond:
            self.events.extend(events)
            self._cond.notify_all()

    @property
    def url(self) -> str:
        return self.supervisor.config.url

    def request_event(self, predicate: Any, timeout: float = 15.0) -> RequestEvent:
        """The first RequestEvent satisfying ``predicate``, waiting for it up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if isinstance(event, RequestEvent) and predicate(event):
                        return event
                left = deadline - time.monotonic()
                assert left > 0, "request event not seen in time"
                self._cond.wait(left)

    def request(self, method: str, target: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, int]:
        """Send one request; (status, body, client port)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.supervisor.config.port, timeout=10)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            port = conn.sock.getsockname()[1]
            response = conn.getresponse()
            return response.status, response.read(), port
        finally:
            conn.close()


@pytest.fixture
def live(site: Path, tmp_path: Path) -> Iterator[Any]:
    """Start a supervisor on the fixture site recording bodies into a private folder."""
    started: list[LiveSupervisor] = []
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)

    def start(**overrides: Any) -> LiveSupervisor:
        config = Config(host="127.0.0.1", port=0, root=str(site / "html_page"), dynamic=str(site / "dynamic"),
                        workers=1, tui=False, reload=False, livereload=False, capture_dir=str(spool))
        live = LiveSupervisor(replace(config, **overrides).resolved())
        live.supervisor.start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.supervisor.stop()


def test_bodies_are_recorded_exactly_and_cut_at_the_cap(live: Any, site: Path) -> None:
    server = live(body_cap=100_000)
    payload = os.urandom(64 * 1024)
    status, answer, port = server.request("POST", "/echo.py/x", payload, {"Content-Type": "application/octet-stream"})
    assert status == 200
    event = server.request_event(lambda e: e.client.endswith(f":{port}"))
    assert event.request_body is not None and not event.request_body.truncated
    assert read_record(event.request_body) == payload
    response = event.response_body  # the echo's JSON escapes bytes: longer than the cap
    assert response is not None and response.size == len(answer) > 100_000 and response.truncated
    assert read_record(response) == answer[:100_000]
    assert stat.S_IMODE(os.stat(event.request_body.path).st_mode) == 0o600

    big = (site / "html_page" / "big.bin").read_bytes()  # 3 MiB by sendfile
    status, answer, port = server.request("GET", "/big.bin")
    assert status == 200 and answer == big
    event = server.request_event(lambda e: e.client.endswith(f":{port}"))
    record = event.response_body
    assert record is not None and record.truncated and record.size == len(big) and record.kept == 100_000
    body = load_body(event, "response")
    assert body.data == big[:100_000] and not body.complete
    assert "cut at 100000 bytes of 3145728" in body.note


def test_replay_sends_the_exact_body_and_refuses_a_cut_one(live: Any) -> None:
    server = live(body_cap=4096)
    small = json.dumps({"items": list(range(500))}).encode()  # ~2.4 KB: the failing replay
    status, original, port = server.request("POST", "/echo.py", small, {"Content-Type": "application/json"})
    assert status == 200
    event = server.request_event(lambda e: e.client.endswith(f":{port}"))
    result = replay_request(event, server.url)
    assert result.status == 200 and result.body == original

    _, _, port = server.request("POST", "/echo.py", b"x" * 5000)
    cut = server.request_event(lambda e: e.client.endswith(f":{port}"))
    with pytest.raises(ExportError, match="cut at 4096 bytes of 5000"):
        replay_request(cut, server.url)
    with pytest.raises(ExportError, match="cut at 4096"):
        curl_command(cut, server.url)


@pytest.mark.parametrize("body", [b"", b'{"name": "caf\xc3\xa9", "quote": "it\'s"}', bytes(range(256)) * 4])
def test_exported_curl_gets_the_same_response(live: Any, body: bytes) -> None:
    server = live()
    headers = {"Content-Type": "application/json", "X-Trace": "a b; c='d'"}
    status, original, port = server.request("POST" if body else "GET", "/echo.py/p%20q?x=1&y=%C3%A9", body or None,
                                            headers)
    assert status == 200
    event = server.request_event(lambda e: e.client.endswith(f":{port}"))
    command = curl_command(event, server.url)
    run = subprocess.run(["bash", "-c", command], capture_output=True, timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    assert hashlib.sha256(run.stdout).hexdigest() == hashlib.sha256(original).hexdigest(), (run.stdout, original)


def test_httpie_command_carries_method_url_headers_and_body(live: Any) -> None:
    server = live()
    _, _, port = server.request("PUT", "/echo.py/a", b"hello world", {"X-Thing": "1"})
    event = server.request_event(lambda e: e.client.endswith(f":{port}"))
    command = httpie_command(event, server.url)
    assert command.startswith("http --ignore-stdin PUT http://127.0.0.1:")
    assert "/echo.py/a " in command and "X-Thing:1" in command and "--raw 'hello world'" in command
    assert "User-Agent:" in command  # the recorded request had none: HTTPie's own is left out


def test_har_of_live_requests_has_the_1_2_shape_and_adds_up(live: Any) -> None:
    server = live()
    _, _, p1 = server.request("GET", "/index.html")
    _, _, p2 = server.request("POST", "/echo.py?q=1", b"a=1&b=2", {"Content-Type": "application/x-www-form-urlencoded",
                                                                 "Cookie": "session=abc; theme=dark"})
    _, _, p3 = server.request("GET", "/big.bin")
    events = [server.request_event(lambda e, p=p: e.client.endswith(f":{p}")) for p in (p1, p2, p3)]
    har = json.loads(json.dumps(har_log(events, server.url)))
    log = har["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "devserver" and len(log["entries"]) == 3
    for entry, event in zip(log["entries"], events):
        assert set(entry) >= {"startedDateTime", "time", "request", "response", "cache", "timings"}
        assert entry["startedDateTime"].endswith("Z")
        timings = entry["timings"]
        assert set(timings) >= {"send", "wait", "receive"}
        assert entry["time"] == pytest.approx(sum(v for v in timings.values() if v >= 0))
        request, response = entry["request"], entry["response"]
        for part in (request, response):
            assert all(set(h) == {"name", "value"} for h in part["headers"])
            assert isinstance(part["cookies"], list) and part["httpVersion"] == "HTTP/1.1"
        assert set(request) >= {"method", "url", "queryString", "headersSize", "bodySize"}
        assert set(response) >= {"status", "statusText", "content", "redirectURL", "headersSize", "bodySize"}
        assert response["headersSize"] + response["bodySize"] == event.bytes_sent == response["_transferSize"]
        assert response["content"]["size"] >= response["bodySize"] >= 0
    form = log["entries"][1]["request"]
    assert form["postData"]["text"] == "a=1&b=2" and form["bodySize"] == 7
    assert form["queryString"] == [{"name": "q", "value": "1"}]
    assert {"name": "theme", "value": "dark"} in form["cookies"]
    big = log["entries"][2]["response"]["content"]
    assert big["size"] == 3 * 1024 * 1024 and big["encoding"] == "base64" and "cut at" in big["comment"]


def test_store_drops_the_oldest_segment_first(tmp_path: Path) -> None:
    store = BodyStore(str(tmp_path), total=SEGMENTS * 64 * 1024)
    records = []
    for i in range(SEGMENTS * 3):
        recorder = BodyRecorder(cap=40 * 1024)
        recorder.feed(bytes([i]) * 50 * 1024)
        records.append(recorder.record(store))
    store.flush()
    assert len(list(tmp_path.iterdir())) == SEGMENTS  # bounded
    assert read_record(records[0]) is None  # oldest dropped first
    assert read_record(records[-1]) == bytes([len(records) - 1]) * 40 * 1024
    assert all(r.truncated and r.size == 50 * 1024 for r in records)
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_app_output_is_attached_to_its_request(live: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from devserver.ipc.events import LogEvent

    server = live(workers=2, tui=True)  # under the dashboard, workers' stdout/stderr become events
    with ThreadPoolExecutor(8) as pool:
        ports = {tag: port for tag, (_, _, port) in
                 zip(range(16), pool.map(lambda t: server.request("GET", f"/chatty.py?t{t}"), range(16)))}
    for tag, port in ports.items():
        event = server.request_event(lambda e, p=port: e.client.endswith(f":{p}"))
        assert event.logs == (f"print from t{tag}", f"logging from t{tag}", f"errors from t{tag}"), event.logs
    # ... and the lines are still in the server log.
    lines = {e.text for e in server.events if isinstance(e, LogEvent)}
    assert {"print from t3", "logging from t3", "errors from t3"} <= lines


def test_json_log_lines_of_an_app_name_their_request(server_factory: Any) -> None:
    server = server_factory("--workers", "1", "--no-tui", "--log-format", "json")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/chatty.py?j1")
    assert conn.getresponse().read() == b"ok"
    conn.close()
    server.wait_for(re.escape('"text": "errors from j1"'))
    server.wait_for(re.escape('"type": "RequestEvent"'))
    records = [json.loads(line) for line in list(server.lines) if line.startswith("{")]
    request = next(r for r in records if r.get("type") == "RequestEvent")
    lines = [r for r in records if r.get("type") == "LogEvent" and "j1" in r["text"]]
    assert {r["text"] for r in lines} == {"print from j1", "logging from j1", "errors from j1"}
    assert request["request_id"] and all(r["request_id"] == request["request_id"] for r in lines)
    assert request["logs"] == ["print from j1", "logging from j1", "errors from j1"]


def test_a_failed_write_loses_that_body_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BodyStore(str(tmp_path), total=SEGMENTS * 64 * 1024)

    def body(byte: bytes) -> BodyRecorder:
        recorder = BodyRecorder(cap=1024)
        recorder.feed(byte * 100)
        return recorder

    kept = body(b"a").record(store)
    store.flush()
    real_write = os.write
    calls = []

    def disk_fills(fd: int, data: Any) -> int:  # 10 bytes go in, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills)
    lost = body(b"b").record(store)
    store.flush()
    monkeypatch.setattr(os, "write", real_write)
    after = body(b"c").record(store)
    store.flush()
    assert lost is not None and lost.size == 100 and read_record(lost) is None  # said to be gone, not wrong bytes
    assert kept is not None and read_record(kept) == b"a" * 100
    assert after is not None and read_record(after) == b"c" * 100  # not shifted by the 10 stray bytes
    store.close()
