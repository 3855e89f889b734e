"""Pilot tests of inspecting requests: bodies in the detail screen, copy as curl/HTTPie, HAR,
replay refusals, edit-and-send, and the diff of a replay against its original (with real workers)."""

from __future__ import annotations

import http.client
import json
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import read_all, until
from textual.geometry import Region
from textual.widgets import DataTable, TextArea

from devserver.debug.capture import BodyRecorder, BodyStore
from devserver.ipc.config import Config
from devserver.ipc.events import BodyRecord, RequestEvent, ServerEvent
from devserver.ipc.reports import ErrorReport, Frame
from devserver.supervisor.core import Supervisor
from tui.app import DashboardApp
from tui.screens.detail import DetailScreen, headers_text, request_line
from tui.screens.edit import EditError, EditScreen, parse_request_text, request_as_text
from tui.widgets.body_view import describe_image, render_body

BASE = 1_700_000_000.0
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def event(**fields: Any) -> RequestEvent:
    values: dict[str, Any] = dict(
        time=BASE, worker_pid=4001, client="127.0.0.1:50000", method="GET", target="/", http_version="1.1",
        status=200, bytes_sent=10, duration_ms=5.0,
    )
    values.update(fields)
    return RequestEvent(**values)


def make_app(**config: Any) -> tuple[DashboardApp, list[str]]:
    app = DashboardApp(Config(**config), None, started=BASE, clock=lambda: BASE + 83, drain_interval=0.0)
    notes: list[str] = []
    original = app.notify
    app.notify = lambda message, *a, **k: (notes.append(message), original(message, *a, **k))[1]  # type: ignore
    return app, notes


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BodyStore]:
    spool = tmp_path / "spool"
    spool.mkdir()
    body_store = BodyStore(str(spool), total=8 * 1024 * 1024)
    yield body_store
    body_store.close()


def recorded(store: BodyStore, data: bytes, cap: int = 1 << 20) -> BodyRecord:
    recorder = BodyRecorder(cap)
    recorder.feed(data)
    record = recorder.record(store)
    store.flush()  # as a worker does before sending the event
    assert record is not None
    return record


# ---------------------------------------------------------------- showing bodies


def test_body_rendering_table() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big") + b"\0" * 20
    cases = [
        (b'{"a":[1,2]}', "application/json", '{\n  "a": [\n    1,\n    2\n  ]\n}'),
        ("café".encode("latin-1"), "text/plain; charset=iso-8859-1", "café"),
        ("日本語".encode(), "text/plain", "日本語"),
        (b"a=1&b=caf%C3%A9", "application/x-www-form-urlencoded", "a = 1\nb = café"),
        (b"title \x1b]52;c;aGk=\x07 and some more text after it, long enough to be text", "text/plain",
         "title \\x1b]52;c;aGk=\\x07 and"),  # escape sequences never reach the terminal
        (png, "image/png", "PNG image, 640×480, 44 B"),
        (b"\x00\x01\x02", "application/octet-stream", "000000  00 01 02"),
    ]
    for data, content_type, expected in cases:
        assert render_body(data, content_type).startswith(expected), (data, content_type)
    # A cut UTF-8 body that ends mid-character is still text.
    text = ("é" * 3000).encode()
    assert render_body(text[:1001], "text/plain", cut=True) == "é" * 500
    assert describe_image(b"GIF89a\x10\x00\x20\x00", 100) == "GIF image, 16×32, 100 B"


def test_header_values_and_paths_are_decoded_with_the_raw_form() -> None:
    utf8_as_latin1 = "Zoë".encode().decode("latin-1")
    shown = headers_text((("X-Name", utf8_as_latin1), ("X-Evil", "a\x1b[2Jb")))
    assert "X-Name: Zoë    (raw: 'Zo\\xc3\\xab')" in shown and "a\\x1b[2Jb" in shown
    assert request_line(event(target="/caf%C3%A9?q=%20")) == "GET /café?q=  HTTP/1.1    (raw: /caf%C3%A9?q=%20)"
    assert request_line(event(target="/%FF")) == "GET /%FF HTTP/1.1"


async def test_detail_shows_pretty_json_and_says_when_a_body_was_cut(store: BodyStore) -> None:
    payload = json.dumps({"name": "widget", "tags": ["a", "b"]}).encode()
    page = b"<p>" + b"x" * 5000
    shown = event(
        method="POST", target="/api", request_headers=(("Content-Type", "application/json"),),
        response_headers=(("Content-Type", "text/html; charset=utf-8"),),
        request_body=recorded(store, payload), response_body=recorded(store, page, cap=1000),
    )
    app, _ = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        app.feed([shown])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        assert str(screen.query_one("#request-body").content).startswith('{\n  "name": "widget",')
        assert str(screen.query_one("#request-body-title").content) == f"Request body ({len(payload)} bytes)"
        title = str(screen.query_one("#response-body-title").content)
        assert "cut at 1000 bytes of 5003" in title
        body = screen.query_one("#response-body")
        assert body.has_class("cut") and "the end of this body is not shown" in str(body.content)


# ------------------------------------------------------------------ export keys


async def test_y_Y_copy_commands_and_W_writes_the_filtered_view_as_har(tmp_path: Path) -> None:
    app, notes = make_app()
    app.export_dir = tmp_path / "exports"
    rows = [event(target="/a", request_headers=(("Host", "h"),)), event(target="/b", status=404),
            event(target="/c", status=500, method="POST", body_preview=b"x=1",
                  request_headers=(("Content-Length", "3"),))]
    async with app.run_test(size=(120, 30)) as pilot:
        app.feed(rows)
        await pilot.pause()
        await pilot.press("up", "up", "y")  # the /a row
        await pilot.pause()
        assert app.clipboard.startswith("curl --path-as-is -sS -X GET http://127.0.0.1:8899/a -H 'Host: h'")
        await pilot.press("Y")
        await pilot.pause()
        assert app.clipboard.startswith("http --ignore-stdin GET http://127.0.0.1:8899/a Host:h")
        saved = sorted(app.export_dir.iterdir())
        assert [p.name.rsplit("-", 1)[-1] for p in saved] == ["request.curl.sh", "request.httpie.sh"]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in saved)
        assert any(f"{saved[0].name}\nin {app.export_dir}/" in n for n in notes)
        await pilot.press("slash", *"~s >=400", "enter", "W")  # the filtered view only
        await until(pilot, lambda: any(p.suffix == ".har" for p in app.export_dir.iterdir()))
        await app.workers.wait_for_complete()
        har = json.loads(next(p for p in app.export_dir.iterdir() if p.suffix == ".har").read_text())
        assert [e["request"]["url"].rsplit("/", 1)[-1] for e in har["log"]["entries"]] == ["b", "c"]
        assert har["log"]["entries"][1]["request"]["postData"]["text"] == "x=1"


async def test_copy_and_replay_refuse_a_cut_body(tmp_path: Path) -> None:
    app, notes = make_app()
    app.export_dir = tmp_path
    cut = event(method="POST", body_preview=b"a" * 1024, request_headers=(("Content-Length", "2400"),))
    async with app.run_test(size=(120, 30)) as pilot:
        app.feed([cut])
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert any("Cannot copy" in n and "1024 bytes of 2400" in n for n in notes)
        assert list(tmp_path.iterdir()) == [] and app.clipboard == ""
        await pilot.press("r")
        await until(pilot, lambda: any("not replayed" in n for n in notes))
        assert any("preview only: 1024 bytes of 2400" in n for n in notes)
        await pilot.press("enter", "e")
        await pilot.pause()
        assert isinstance(app.screen, EditScreen)
        assert "cannot be edited" in str(app.screen.query_one("#edit-error").content)


def test_edit_text_round_trip_and_errors() -> None:
    original = event(method="POST", target="/x", body_preview=b'{"a": 1}',
                     request_headers=(("Host", "h"), ("Content-Length", "8")))
    text = request_as_text(original)
    assert text == 'POST /x HTTP/1.1\nHost: h\n\n{"a": 1}'
    edited, body = parse_request_text(text.replace("/x", "/y").replace("1}", "2}"), original)
    assert (edited.method, edited.target, edited.request_headers, body) == ("POST", "/y", (("Host", "h"),), b'{"a": 2}')
    for bad, message in (("", "first line"), ("GET\n\n", "first line"), ("GET / HTTP/1.1\nno colon\n\n", "line 2")):
        with pytest.raises(EditError, match=message):
            parse_request_text(bad, original)
    with pytest.raises(EditError, match="not UTF-8"):
        request_as_text(replace(original, body_preview=b"\xff\xfe", request_headers=(("Content-Length", "2"),)))


# ------------------------------------------------- replay, edit and diff, live


@pytest.fixture
def supervised(site: Path, tmp_path: Path) -> Iterator[Any]:
    """A dashboard app fed by a real supervisor recording bodies (like tui.run does)."""
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    config = Config(host="127.0.0.1", port=0, root=str(site / "html_page"), dynamic=str(site / "dynamic"),
                    workers=2, reload=False, livereload=False, capture_dir=str(spool)).resolved()
    app, notes = make_app()
    app.config = config
    supervisor = Supervisor(config, sink=app.feed)
    supervisor.start()
    app.feed([ServerEvent(time.time(), "listening", url=supervisor.config.url)])
    yield app, notes, supervisor.config.port
    supervisor.stop()


def post(port: int, target: str, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", target, body=body, headers={"Content-Type": "application/json"})
    local = conn.sock.getsockname()[1]
    conn.getresponse().read()
    conn.close()
    return local


async def test_replay_of_a_64k_post_is_exact_and_edit_shows_a_diff(supervised: Any) -> None:
    app, notes, port = supervised
    payload = json.dumps({"data": "y" * 64 * 1024}).encode()
    async with app.run_test(size=(120, 40)) as pilot:
        local = post(port, "/echo.py", payload)
        log = app.main.request_log
        await until(pilot, lambda: any(r.client.endswith(f":{local}") for r in log.rows))
        await pilot.press("enter", "r")
        await until(pilot, lambda: len(log.rows) == 2)
        replay = log.rows[1]
        assert replay.request_body is not None and replay.request_body.size == len(payload)
        await until(pilot, lambda: any("200 OK" in n for n in notes))
        await pilot.press("escape", "end", "enter")  # the replay's own detail: a diff, and nothing changed
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.request is log.rows[1])
        diff = str(app.screen.query_one("#diff").content)
        assert "status: 200 (same)" in diff and f"body: same ({replay.response_body.size} bytes)" in diff
        # e: edit the body, send it; its detail shows what changed in the response.
        await pilot.press("e")
        await pilot.pause()
        editor = app.screen.query_one(TextArea)
        editor.text = editor.text.replace('"y', '"zz', 1)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(log.rows) == 3)
        await pilot.press("escape", "end", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.request is log.rows[2])
        diff = str(app.screen.query_one("#diff").content)
        assert "status: 200 (same)" in diff
        assert "-  \"body\": \"{\\\"data\\\": \\\"yyy" in diff and "+  \"body\": \"{\\\"data\\\": \\\"zzy" in diff
        assert "-  \"content_length\": \"65548\"" in diff and "+  \"content_length\": \"65549\"" in diff


# ------------------------------------------------------------------ rich errors

REPORT = ErrorReport(
    exception="KeyError: 'missing'",
    frames=(
        Frame("/site/dynamic/shop.py", 9, "application",
              ((8, "    name = environ.get('QUERY_STRING', '')"), (9, "    return lookup(items, name)")),
              (("password", "********"), ("items", "[0, 1, 2, 3, 4, 5, 6, 7, ...]"), ("name", "'missing\x1b[2J'"))),
        Frame("/site/dynamic/shop.py", 14, "lookup", ((13, "    count = len(items)"), (14, "    return {'known': count}[name]")),
              (("count", "1000"),)),
    ),
    folded=3, method="GET", target="/shop.py?missing",
)


async def test_detail_of_a_failed_request_shows_frames_source_and_locals() -> None:
    failed = event(status=500, target="/shop.py?missing", traceback="Traceback …\nKeyError: 'missing'",
                   error_report=REPORT)
    app, _ = make_app()
    async with app.run_test(size=(110, 50)) as pilot:
        app.feed([failed])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        text = str(app.screen.query_one("#traceback").content)
        assert text.startswith("(3 server frames folded)\nFile \"/site/dynamic/shop.py\", line 9, in application")
        assert "→     9 │     return lookup(items, name)" in text and "password = ********" in text
        assert "name = 'missing\\x1b[2J'" in text  # escaped for the terminal
        assert text.endswith("count = 1000\n\nKeyError: 'missing'")
        assert "2 app frames" in str(app.screen.query_one("#traceback-title").content)


async def test_detail_shows_what_the_app_printed_for_this_request() -> None:
    chatty = event(target="/chatty.py?t1", logs=("print from t1", "logging \x1b[31mfrom t1"))
    app, _ = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        app.feed([chatty])
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("4")
        await pilot.pause()
        table = app.screen.query_one("#log-lines", DataTable)
        assert [str(table.get_row_at(i)[2]) for i in range(table.row_count)] == [
            "print from t1", "logging \\x1b[31mfrom t1"]  # escaped for the terminal
        assert "2 lines" in str(app.screen.query_one("#app-output-title").content)


# ------------------------------------------- what went on the wire, live (issue 20)


def raw_exchange(port: int, data: bytes) -> tuple[int, bytes]:
    """Send ``data`` on a fresh connection; our local port and all the server answered until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        local = sock.getsockname()[1]
        sock.sendall(data)
        return local, read_all(sock)


def log_lines(app: DashboardApp) -> list[str]:
    log = app.main.request_log
    region = Region(0, 0, log.size.width, log.size.height)
    return ["".join(seg.text for seg in strip) for strip in log.render_lines(region)]


@pytest.mark.parametrize("size", [(80, 24), (140, 40)])
async def test_refused_requests_show_the_line_they_sent_in_the_row_and_the_details(supervised: Any, size: tuple[int, int]) -> None:
    app, _, port = supervised
    async with app.run_test(size=size) as pilot:
        log = app.main.request_log
        local, answer = raw_exchange(port, b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 501 ")
        await until(pilot, lambda: any(r.client.endswith(f":{local}") for r in log.rows))
        local, answer = raw_exchange(port, b"GET /\x1b[2J HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        await until(pilot, lambda: any(r.client.endswith(f":{local}") for r in log.rows))
        await pilot.pause()
        connect_row, bad_row = [line for line in log_lines(app) if '"' in line]
        assert " - " in connect_row and " 501 " in connect_row and " 400 " in bad_row and "\x1b" not in bad_row
        if size[0] > 100:
            assert '"CONNECT localhost:443 HTTP/1.1"' in connect_row and '"GET /\\x1b[2J HTTP/1.1"' in bad_row
        else:  # the target column is narrow: the line is shortened there, whole in the details
            assert '"CONNECT localhost:' in connect_row and "…" in connect_row and '"GET /\\x1b' in bad_row
        await pilot.press("up", "enter")  # the CONNECT row's details
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        line = str(app.screen.query_one("#request-line").content)
        assert line == '"CONNECT localhost:443 HTTP/1.1"    (as received: refused before it was parsed)'
        assert app.screen.title == '- "CONNECT localhost:443 HTTP/1.1" → 501'
        await pilot.press("escape", "end", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.request is log.rows[-1])
        assert str(app.screen.query_one("#request-line").content).startswith('"GET /\\x1b[2J HTTP/1.1"    (as received')
        assert "Malformed request" in str(app.screen.query_one(".error").content)


async def test_details_show_the_response_headers_exactly_as_sent(supervised: Any) -> None:
    """Date, Server, Content-Length and Connection that the server added are shown, in wire order."""
    app, _, port = supervised
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.main.request_log
        local, answer = raw_exchange(port, b"GET /echo.py HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        wire_head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        assert wire_head[0].startswith("Date: ") and wire_head[1].startswith("Server: devserver/")
        await until(pilot, lambda: any(r.client.endswith(f":{local}") for r in log.rows))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        shown = str(app.screen.query_one("#response-headers").content).split("\n")
        assert shown == wire_head  # every field, in the order it went out
        assert any(f == "Connection: close" for f in shown) and any(f.startswith("Content-Length: ") for f in shown)
