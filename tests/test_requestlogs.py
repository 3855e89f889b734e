"""Lines an app writes while serving a request are JSON objects naming that request, with or without
recorded bodies, and a last wsgi.errors line without its newline too."""

from __future__ import annotations

import http.client
import io
import json
import logging
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import http_get, wait_until

from devserver.console.log import ConsoleLog
from devserver.ipc.config import Config
from devserver.ipc.events import Event, LogEvent, RequestEvent
from devserver.supervisor.core import Supervisor


@pytest.mark.parametrize("cap", ["0", "1M"])
def test_json_lines_name_their_request_whatever_the_body_cap(server_factory: Any, cap: str) -> None:
    server = server_factory("--workers", "2", "--no-tui", "--log-format", "json", "--body-cap", cap)
    tags = [f"c{n}" for n in range(12)]
    with ThreadPoolExecutor(6) as pool:
        assert all(body == b"ok" for _, _, body in pool.map(lambda t: http_get(server, f"/unfinished_line.py?{t}"),
                                                              tags))
    wait_until(lambda: sum('"type": "RequestEvent"' in line for line in list(server.lines)) >= len(tags), 10,
               "every request logged")
    lines = list(server.lines)
    assert all(line.startswith("{") for line in lines), [line for line in lines if not line.startswith("{")]
    records = [json.loads(line) for line in lines]
    requests = {r["target"].split("?")[1]: r for r in records if r["type"] == "RequestEvent"}
    for tag in tags:
        request = requests[tag]
        expected = {f"print from {tag}", f"logging from {tag}", f"errors from {tag}", f"unfinished print from {tag}"}
        logged = [r for r in records if r["type"] == "LogEvent" and r["text"].endswith(f" from {tag}")]
        assert {r["text"] for r in logged} == expected, logged
        assert request["request_id"] and all(r["request_id"] == request["request_id"] for r in logged), logged
        assert set(request["logs"]) == expected
        # The logged line names its record (level, logger, place in the dynamic folder); a print() names none.
        sources = dict(zip(request["logs"], request["log_sources"], strict=True))
        assert sources[f"logging from {tag}"] == ["warning", "unfinished", "unfinished_line.py:13"]
        assert sources[f"print from {tag}"] == sources[f"errors from {tag}"] == ["", "", ""]


@pytest.mark.parametrize("detail", [True, False])
def test_request_detail_is_sent_only_where_it_is_shown(site: Path, detail: bool) -> None:
    """The dashboard and JSON lines show a request's headers and lines (detail on); the text console does not,
    and its workers leave them out of the request events, while the app's lines still reach the log."""
    events: list[Event] = []
    arrived = threading.Condition()

    def sink(batch: list[Event]) -> None:
        with arrived:
            events.extend(batch)
            arrived.notify_all()

    config = Config(host="127.0.0.1", port=0, root=str(site / "html_page"), dynamic=str(site / "dynamic"),
                    workers=1, tui=False, reload=False, livereload=False, request_detail=detail).resolved()
    supervisor = Supervisor(config, sink=sink)
    supervisor.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", supervisor.config.port, timeout=10)
        conn.request("GET", "/unfinished_line.py?d1", headers={"X-Probe": "seen"})
        assert conn.getresponse().read() == b"ok"
        conn.close()
        deadline = time.monotonic() + 10
        with arrived:
            while not any(isinstance(e, RequestEvent) for e in events) or \
                    not any(isinstance(e, LogEvent) and e.text == "errors from d1" for e in events):
                assert arrived.wait(deadline - time.monotonic()), f"events missing: {events}"
        request = next(e for e in events if isinstance(e, RequestEvent))
        lines = {e.text: e.request_id for e in events if isinstance(e, LogEvent)}
    finally:
        supervisor.stop()
    expected = {"errors from d1"}  # its wsgi.errors line (print and logging reach the log as the CLI sets it up)
    assert expected <= set(lines)
    if detail:
        assert ("X-Probe", "seen") in request.request_headers
        assert ("Content-Length", "2") in request.response_headers
        assert set(request.logs) == expected and request.request_id
        assert all(lines[text] == request.request_id for text in expected)
    else:
        assert request.request_headers == () and request.response_headers == ()
        assert request.logs == () and request.request_id == ""
        assert all(lines[text] == "" for text in expected)


def test_only_json_lines_ask_for_request_detail() -> None:
    assert ConsoleLog(io.StringIO(), "json").shows_request_detail
    assert not ConsoleLog(io.StringIO(), "text").shows_request_detail



def test_a_logged_line_names_its_record_and_a_print_names_nothing() -> None:
    """In memory: the record factory gives the line the app's handler writes its level, logger and place."""
    from devserver.debug import requestlogs

    stream = io.StringIO()
    logger = logging.getLogger("shop.views")
    logger.addHandler(logging.StreamHandler(stream))
    logger.propagate = False
    quiet = logging.getLogger("shop.quiet")
    quiet.addHandler(logging.NullHandler())  # a record made and never written must not name the next line
    quiet.propagate = False
    previous = logging.getLogRecordFactory()
    requestlogs.follow_logging(lambda path: path.removeprefix(str(Path(__file__).parent) + "/"))
    line = 0
    try:
        def serve(_: None) -> None:
            nonlocal line
            line = sys._getframe().f_lineno + 1
            logger.warning("low stock: %d", 3)
            requestlogs.note(stream.getvalue().rstrip("\n"))
            quiet.warning("never written")
            requestlogs.note("a print")

        collector = requestlogs.LineCollector()
        requestlogs.call_with(collector, serve, None)
    finally:
        logging.setLogRecordFactory(previous)
    assert collector.snapshot() == ("low stock: 3", "a print")
    assert collector.snapshot_sources() == (("warning", "shop.views", f"test_requestlogs.py:{line}"), ("", "", ""))
