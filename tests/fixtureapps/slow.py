"""Sleeps before answering (?s=seconds, default 5): a slow app must not hold up others.

``?started=NAME`` creates the file NAME in the current folder when the call begins, so a test
can wait for the request to be in flight instead of guessing how long that takes.
``?until=NAME`` holds the request until the file NAME appears in the current folder (for at most
``s`` seconds) and answers ``released``, or ``not released`` if it never came: a test can then ask
other things while this request is known to be in the app, and let it go when it has.
"""

import time
from pathlib import Path
from urllib.parse import parse_qs


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    seconds = float(query.get("s", ["5"])[0])
    if "started" in query:
        Path(Path(query["started"][0]).name).write_text("started")
    if "until" in query:
        release = Path(Path(query["until"][0]).name)
        deadline = time.monotonic() + seconds
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        body = b"released" if release.exists() else b"not released"
    else:
        time.sleep(seconds)
        body = b"slept %.1f" % seconds
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
