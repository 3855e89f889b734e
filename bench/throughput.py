"""Static-file throughput: devserver against gunicorn (sync, gthread) and http.server.

Each server in turn serves the same 1 KiB and 1 MiB files on 127.0.0.1 and
is loaded with wrk over keep-alive connections.  Targets, on the 1 KiB file:
devserver >= 3x ``python -m http.server`` and >= 1.5x gunicorn gthread.

    python bench/throughput.py [--duration 10] [--workers 2] [--only devserver,gunicorn-gthread] [--json PATH]
"""

from __future__ import annotations

import sys

import servers
import suite

BUILDERS: dict[str, suite.SpecBuilder] = {
    "devserver": servers.devserver,
    "gunicorn-sync": servers.gunicorn_sync,
    "gunicorn-gthread": servers.gunicorn_gthread,
    "http.server": servers.http_server,
}

CASES = (
    suite.Case("1k", "one_k.txt", conns=50, label="1 KiB file /one_k.txt"),
    suite.Case("1m", "one_m.bin", conns=10, label="1 MiB file /one_m.bin"),
)

TARGETS = (
    suite.Target("1k", "http.server", 3.0),
    suite.Target("1k", "gunicorn-gthread", 1.5),
)


if __name__ == "__main__":
    sys.exit(suite.main("static-file throughput", __doc__.splitlines()[0], BUILDERS, CASES, TARGETS))
