"""Apps wrapped in wsgiref's validator: it asserts the *server's* side of PEP 3333 too."""

from wsgiref.validate import validator


def _inner(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    text = f"{environ['REQUEST_METHOD']} {environ['SCRIPT_NAME']} {environ['PATH_INFO']} {len(body)}"
    data = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


application = validator(_inner)
