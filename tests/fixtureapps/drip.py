"""Streams a long body slowly and records when the server closes it.

Query: ``token`` (names the record file), ``chunks``, ``size`` (bytes per
chunk), ``pause`` (seconds between chunks).  ``close()`` writes
``<token>.closed`` next to this module with the number of chunks produced,
so a test can see that a response whose client vanished was ended
(PEP 3333: the server must call ``close()`` of the iterable).
"""

import os
import time
from urllib.parse import parse_qs

HERE = os.path.dirname(os.path.abspath(__file__))


class Drip:
    def __init__(self, token, chunks, size, pause):
        self.token = token
        self.chunks = chunks
        self.chunk = b"d" * size
        self.pause = pause
        self.produced = 0

    def __iter__(self):
        for _ in range(self.chunks):
            self.produced += 1
            yield self.chunk
            time.sleep(self.pause)

    def close(self):
        if self.token:
            path = os.path.join(HERE, f"{self.token}.closed")
            with open(path + ".tmp", "w") as f:
                f.write(str(self.produced))
            os.replace(path + ".tmp", path)  # the test never sees a half-written record


def application(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    token = "".join(c for c in query.get("token", "") if c.isalnum())
    body = Drip(token, int(query.get("chunks", "10")), int(query.get("size", "1024")), float(query.get("pause", "0")))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return body
