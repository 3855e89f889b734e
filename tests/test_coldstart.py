"""What a plain start imports before its first answer (issue 25, item 3: the cold start).

Every module a worker holds at its first request was imported by the
supervisor before the fork or by the worker before it served: either way it
is on the path from launch to the first 200.  A page in ``dynamic/`` reports
which of the modules a start does not need its worker has loaded; the one a
later request needs (the folder listing) appears once that request came.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import LiveServer, http_get

# Loaded by the first request that needs them, never by a start.
NOT_AT_START = ("devserver.handlers.listing", "devserver.tls", "cryptography", "textual", "tui")

MODULES_PAGE = f'''
import json
import sys


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(sorted(name for name in {NOT_AT_START!r} if name in sys.modules)).encode()]
'''


def test_a_plain_start_loads_the_folder_listing_with_the_first_folder_page_only(tmp_path: Path) -> None:
    (tmp_path / "html_page" / "empty").mkdir(parents=True)
    (tmp_path / "html_page" / "empty" / "note.txt").write_text("a file to list\n")
    (tmp_path / "dynamic").mkdir()
    (tmp_path / "dynamic" / "modules.py").write_text(MODULES_PAGE)
    server = LiveServer(["--workers", "1"], tmp_path).start()
    try:
        status, _, body = http_get(server, "/modules.py")
        assert status == 200 and json.loads(body) == []
        status, _, page = http_get(server, "/empty/")
        assert status == 200 and b"note.txt" in page
        status, _, body = http_get(server, "/modules.py")
        assert status == 200 and json.loads(body) == ["devserver.handlers.listing"]
    finally:
        server.stop()
