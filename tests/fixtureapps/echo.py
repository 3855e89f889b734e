"""Echoes the request: method, path, query and body, as JSON."""

import json


def application(environ, start_response):
    length = environ.get("CONTENT_LENGTH") or "0"
    body = environ["wsgi.input"].read(int(length)) if length.isdigit() else environ["wsgi.input"].read()
    payload = {
        "method": environ["REQUEST_METHOD"],
        "script_name": environ["SCRIPT_NAME"],
        "path_info": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "content_length": environ.get("CONTENT_LENGTH", ""),
        "content_type": environ.get("CONTENT_TYPE", ""),
        "body": body.decode("latin-1"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
    }
    data = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
