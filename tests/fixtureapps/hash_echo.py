"""Answers with the length and SHA-256 of the request body it received (for exact-replay tests)."""

import hashlib
import json


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    data = json.dumps({"method": environ["REQUEST_METHOD"], "length": len(body),
                       "sha256": hashlib.sha256(body).hexdigest()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
