"""A FastAPI JSON endpoint, keep-alive: devserver against uvicorn (httptools) and granian ASGI, interleaved rounds.

The ``fastapi`` workload of ``rounds.py``: ``GET /items`` of a FastAPI app
returning a small dict (routing, FastAPI's validation and JSON encoding on
every request), 50 connections, the same worker count for every server.  The
median of the per-round req/s ratios is reported with each server's CPU time
per request (its process tree, from /proc) and the load average.  Target: at
least 1.2x uvicorn's req/s.

    python bench/fastapi_json.py [--rounds 3] [--duration 5] [--warmup 1] [--workers 2] [--json PATH]
"""

from __future__ import annotations

import sys

import rounds

if __name__ == "__main__":
    sys.exit(rounds.main(["--only", "fastapi", *sys.argv[1:]]))
