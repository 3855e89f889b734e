"""Sleeps before answering (?s=seconds, default 5): a slow app must not hold up others.

``?started=NAME`` creates the file NAME in the current folder when the call begins, so a test
can wait for the request to be in flight instead of guessing how long that takes.
"""

import time
from pathlib import Path
from urllib.parse import parse_qs


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    seconds = float(query.get("s", ["5"])[0])
    if "started" in query:
        Path(Path(query["started"][0]).name).write_text("started")
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept %.1f" % seconds]
