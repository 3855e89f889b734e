"""A module:callable app for the APP argument tests."""


def app(environ, start_response):
    data = ("webapp " + environ["PATH_INFO"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
