"""The plain console's request line, in memory: painted on a terminal, plain elsewhere, escaped everywhere.

The line is built from pieces painted once (the stamp each second, a status, a size, a worker's pid):
these tests hold it to what rich paints for each style and to the text of the line itself.
"""

from __future__ import annotations

import io
import json

from rich.style import Style

from devserver.console import log as console_log
from devserver.console.log import ConsoleLog
from devserver.ipc.events import RequestEvent, ServerEvent, WebSocketSummary

WHEN = 1796641648.25


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as rich asks (its colours are then written)."""

    def isatty(self) -> bool:
        return True


def request(status: int = 200, size: int = 158, pid: int = 7, target: str = "/", **fields: object) -> RequestEvent:
    return RequestEvent(WHEN, pid, "127.0.0.1:5000", "GET", target, "HTTP/1.1", status, size, 0.25, **fields)  # type: ignore[arg-type]


def lines_of(events: list[RequestEvent], stream: io.StringIO, log_format: str = "text") -> list[str]:
    log = ConsoleLog(stream, log_format)
    log(list(events))
    log.close()
    return stream.getvalue().splitlines()


def painted(style: str, text: str) -> str:
    start, _, end = Style.parse(style).render("\0", color_system=ConsoleLog(Terminal()).console._color_system).partition("\0")
    return f"{start}{text}{end}"


def test_a_line_on_a_terminal_paints_each_piece_as_rich_would() -> None:
    ok, missing, failed, moved = lines_of([request(), request(404, 0), request(503, 2048), request(302)], Terminal())
    assert ok.startswith(painted("dim", ok[4:12]))  # the stamp, HH:MM:SS
    assert f" {painted('bold', 'GET')} / {painted('green', '200')} 158B 0.2ms {painted('dim', 'pid 7')}" in ok
    assert f" {painted('yellow', '404')} 0B " in missing
    assert f" {painted('bold red', '503')} 2.0K " in failed
    assert f" {painted('cyan', '302')} 158B " in moved


def test_a_line_elsewhere_has_no_escape_codes_and_the_same_words() -> None:
    (line,) = lines_of([request(websocket=WebSocketSummary(3, 4, 1000))], io.StringIO())
    assert "\x1b" not in line
    assert line.endswith(" 127.0.0.1:5000 GET / 200 158B 0.2ms pid 7 websocket 3 in / 4 out, closed 1000")


def test_control_characters_from_the_request_are_escaped_on_the_line() -> None:
    (line, error) = lines_of([request(target="/a\x1b[2Jb"), request(400, error="bad\x07header")], Terminal())
    assert "/a\\x1b[2Jb" in line and "\x1b[2J" not in line
    assert "bad\\x07header" in error and "\x07" not in error


def test_memoised_pieces_stay_right_past_the_memo_s_bound() -> None:
    sizes = list(range(console_log.MEMO_ENTRIES + 50))
    lines = lines_of([request(size=size, pid=size % 3) for size in sizes], io.StringIO())
    assert [line.split()[5] for line in lines] == [console_log.human_bytes(size) for size in sizes]
    assert [line.split()[-1] for line in lines] == [str(size % 3) for size in sizes]


def test_json_lines_keep_every_field_and_escape_controls() -> None:
    event = request(target="/\x1b", request_headers=(("host", "x"),), websocket=WebSocketSummary(1, 2, 1000))
    log = ConsoleLog(stream := io.StringIO(), "json")
    log([ServerEvent(WHEN, "listening", "http://127.0.0.1:1", 2), event])
    log.close()
    raw = stream.getvalue().splitlines()[1]
    assert "\x1b" not in raw and "\\u001b" in raw
    record = json.loads(raw)
    assert record["type"] == "RequestEvent" and record["target"] == "/\x1b"
    assert record["request_headers"] == [["host", "x"]]
    assert record["websocket"] == {"messages_in": 1, "messages_out": 2, "close_code": 1000, "close_reason": "",
                                   "messages": []}
    assert list(record)[:10] == ["type", "time", "worker_pid", "client", "method", "target", "http_version", "status",
                                 "bytes_sent", "duration_ms"]
