"""Sleeps before answering (?s=seconds, default 5): a slow app must not hold up others."""

import time
from urllib.parse import parse_qs


def application(environ, start_response):
    seconds = float(parse_qs(environ["QUERY_STRING"]).get("s", ["5"])[0])
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept %.1f" % seconds]
