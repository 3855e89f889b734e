"""WSGI hello world: devserver against gunicorn gthread, waitress, werkzeug and uvicorn;
and the 1 MiB static file against nginx.

Every WSGI server runs the fixture's ``dynamic/hello.py`` (devserver as
``/hello.py``, the peers at ``/``) under wrk with keep-alive connections.
Targets: hello world >= 1.5x gunicorn gthread and >= 3x werkzeug's dev
server; the 1 MiB file at >= 50% of nginx's req/s (0.5x).

    python bench/wsgi_hello.py [--duration 10] [--workers 2] [--only devserver,nginx] [--json PATH]
"""

from __future__ import annotations

import sys

import servers
import suite

BUILDERS: dict[str, suite.SpecBuilder] = {
    "devserver": servers.devserver,
    "gunicorn-gthread": servers.gunicorn_gthread_hello,
    "waitress": servers.waitress,
    "werkzeug": servers.werkzeug,
    "uvicorn": servers.uvicorn,
    "nginx": servers.nginx,
}

CASES = (
    suite.Case("hello", "hello", conns=50, label="WSGI hello world"),
    suite.Case("1m", "one_m.bin", conns=10, label="1 MiB file /one_m.bin"),
)

TARGETS = (
    suite.Target("hello", "gunicorn-gthread", 1.5),
    suite.Target("hello", "werkzeug", 3.0),
    suite.Target("1m", "nginx", 0.5),
)


if __name__ == "__main__":
    sys.exit(suite.main("WSGI hello world and 1 MiB against nginx", __doc__.splitlines()[0], BUILDERS, CASES,
                        TARGETS))
