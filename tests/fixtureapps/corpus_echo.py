"""Echoes everything a request told the app, for the conformance corpus (tests/test_http_corpus.py)."""

import json


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    payload = {
        "method": environ["REQUEST_METHOD"],
        "path_info": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "environ": {k: v for k, v in environ.items() if isinstance(v, str)},
        "body": body.decode("latin-1"),
    }
    data = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
