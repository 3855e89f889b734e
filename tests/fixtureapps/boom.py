"""Raises: the server must answer 500 with the traceback and serve on."""


def application(environ, start_response):
    raise RuntimeError("boom from the fixture app")
