"""The zero-argument form: a plain function returning a string; the server wraps it as 200 text/plain."""


def application() -> str:
    return "Hello from devserver!"
