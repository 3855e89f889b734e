"""ASGI hello world, keep-alive: devserver against uvicorn (httptools, the same worker count) and granian ASGI, in interleaved rounds.

The ``asgi`` workload of ``rounds.py``: each round starts, checks, warms up
and loads each server in turn (a different one first each round); the median
of the per-round req/s ratios is reported with each server's CPU time per
request (its process tree, from /proc) and the load average.  Target: at
least 1.5x uvicorn's req/s.

    python bench/asgi_hello.py [--rounds 3] [--duration 5] [--warmup 1] [--workers 2] [--json PATH]
"""

from __future__ import annotations

import sys

import rounds

if __name__ == "__main__":
    sys.exit(rounds.main(["--only", "asgi", *sys.argv[1:]]))
