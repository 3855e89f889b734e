"""One app per WSGI feature, chosen by PATH_INFO."""

import sys

CLOSED = []


class ClosingBody:
    def __init__(self, parts, fail_at=None):
        self.parts = parts
        self.fail_at = fail_at

    def __iter__(self):
        for i, part in enumerate(self.parts):
            if i == self.fail_at:
                raise ValueError("failed while streaming")
            yield part

    def close(self):
        CLOSED.append(len(CLOSED) + 1)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/closed":
        body = str(len(CLOSED)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/close-called":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingBody([b"a", b"b"])
    if path == "/fail-after-headers":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingBody([b"first", b"second"], fail_at=1)
    if path == "/exc-info":
        try:
            raise KeyError("recovered")
        except KeyError:
            start_response("200 OK", [("Content-Type", "text/plain")])
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"from write, ")
        return [b"then the iterable"]
    if path == "/file":
        f = open(__file__, "rb")
        start_response("200 OK", [("Content-Type", "text/x-python")])
        return environ["wsgi.file_wrapper"](f, 8192)
    if path.startswith("/file-declared/"):
        # A file_wrapper body with a Content-Length the app chose: more, fewer or exactly the file's bytes.
        f = open(__file__, "rb")
        size = len(f.read())
        f.seek(0)
        declared = size + int(path.rsplit("/", 1)[1])
        start_response("200 OK", [("Content-Type", "text/x-python"), ("Content-Length", str(declared))])
        return environ["wsgi.file_wrapper"](f, 8192)
    if path == "/no-content":
        start_response("204 No Content", [])
        return [b""]
    if path == "/bad-header":
        start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: evil=1")])
        return [b"never"]
    if path == "/late-start":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"late"
        return gen()
    if path == "/html":
        page = b"<html><body>app page</body></html>"
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))])
        return [page]
    if path == "/short":
        start_response("200 OK", [("Content-Length", "10")])
        return [b"12345"]
    if path.startswith("/long/"):
        # A body longer than its Content-Length of 5, as a list, through write() or as a generator.
        how = path.rsplit("/", 1)[1]
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        if how == "write":
            write(b"12345")
            write(b"67890")
            return []
        if how == "stream":
            return (part for part in (b"123", b"4567", b"890"))
        return [b"1234567890"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such case"]
