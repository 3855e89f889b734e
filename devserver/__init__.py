"""devserver: a Python development web server with a live terminal dashboard."""

__version__ = "0.1.0"

__all__ = ["HTTPServer", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy so that worker processes importing devserver.http.parser stay small.
    if name == "HTTPServer":
        from devserver.server import HTTPServer

        return HTTPServer
    raise AttributeError(name)
