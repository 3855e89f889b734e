"""Writes to wsgi.errors and prints a last line without its newline (and prints and logs): each belongs to its request."""

import logging
import time

log = logging.getLogger("unfinished")


def application(environ, start_response):
    tag = environ.get("QUERY_STRING", "")
    print(f"print from {tag}")
    time.sleep(0.01)  # let requests overlap in the worker's threads
    log.warning("logging from %s", tag)
    environ["wsgi.errors"].write(f"errors from {tag}")  # no newline: written out when the request ends
    print(f"unfinished print from {tag}", end="")  # the same for the app's own output
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
