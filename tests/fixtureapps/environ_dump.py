"""Returns the environ's plain values as JSON (for environ tests)."""

import json


def application(environ, start_response):
    shown = {}
    for key, value in environ.items():
        if isinstance(value, (str, int, bool, tuple)):
            shown[key] = value
        else:
            shown[key] = type(value).__name__
    shown["wsgi.file_wrapper_present"] = callable(environ.get("wsgi.file_wrapper"))
    environ["wsgi.errors"].write("environ_dump says hello\n")
    data = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]
