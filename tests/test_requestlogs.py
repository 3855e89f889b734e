"""Lines an app writes while serving a request are JSON objects naming that request, with or without
recorded bodies, and a last wsgi.errors line without its newline too."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import http_get


@pytest.mark.parametrize("cap", ["0", "1M"])
def test_json_lines_name_their_request_whatever_the_body_cap(server_factory: Any, cap: str) -> None:
    server = server_factory("--workers", "2", "--no-tui", "--log-format", "json", "--body-cap", cap)
    tags = [f"c{n}" for n in range(12)]
    with ThreadPoolExecutor(6) as pool:
        assert all(body == b"ok" for _, _, body in pool.map(lambda t: http_get(server, f"/unfinished_line.py?{t}"),
                                                              tags))
    deadline = time.monotonic() + 10
    while sum('"type": "RequestEvent"' in line for line in list(server.lines)) < len(tags):
        assert time.monotonic() < deadline, "not every request was logged"
        time.sleep(0.02)
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
