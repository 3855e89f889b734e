"""A generator body without Content-Length: sent chunked on HTTP/1.1."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        for i in range(5):
            yield b"part %d\n" % i

    return body()
