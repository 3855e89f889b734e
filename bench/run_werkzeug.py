"""Serve a WSGI app with werkzeug's development server, threaded (for the benchmarks).

    python bench/run_werkzeug.py HOST PORT module:callable

The module is imported from ``sys.path`` (set ``PYTHONPATH``).  Runs until
SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import importlib
import sys

from werkzeug.serving import run_simple


def main(argv: list[str]) -> int:
    if len(argv) != 3 or ":" not in argv[2]:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    host, port, target = argv
    module_name, attribute = target.split(":", 1)
    app = getattr(importlib.import_module(module_name), attribute)
    run_simple(host, int(port), app, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
