"""A real Flask app that configures logging at its import (``basicConfig``, as many do) and logs and prints: each
line of a request reaches its JSON log line, a logged one with where it was logged (issue 23, item 3)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from realapp import DEADLINE, get, start

FILES = {
    "shop/__init__.py": "",
    "shop/app.py": '''
import logging

from flask import Flask

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
log = logging.getLogger("shop.orders")
app = Flask(__name__)


@app.route("/order")
def order():
    log.info("order placed \\x1b[2J")
    app.logger.warning("stock is low")
    print("printed by the view")
    return "ok"
''',
}


def test_lines_of_a_logger_configured_at_import_reach_their_request_with_their_place(tmp_path: Path) -> None:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    server = start(tmp_path, "shop.app:app", "--log-format", "json")
    try:
        assert get(server, "/order")[2] == "ok"
        deadline = time.monotonic() + DEADLINE
        while True:
            records = [json.loads(line) for line in list(server.lines) if line.startswith("{")]
            rows = [r for r in records if r["type"] == "RequestEvent" and r["target"] == "/order"]
            if rows:
                break
            assert time.monotonic() < deadline, "the request was never logged"
            time.sleep(0.05)
        row = rows[0]
        assert row["logs"] == ["INFO shop.orders order placed \x1b[2J", "WARNING shop.app stock is low",
                               "printed by the view"]
        assert row["log_sources"] == [
            ["info", "shop.orders", "shop/app.py:13"],
            ["warning", "shop.app", "shop/app.py:14"],
            ["", "", ""],  # a print() names no place
        ]
    finally:
        server.stop()
