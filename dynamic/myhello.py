"""The seed's first app: a plain function; the server wraps it as 200 text/plain."""


def application() -> str:
    return "Hello from devserver!"
