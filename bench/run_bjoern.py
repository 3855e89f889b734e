"""Serve a WSGI app with bjoern in N processes (for the benchmarks).

    python bench/run_bjoern.py HOST PORT WORKERS module:callable

bjoern has no worker option: the socket is bound once, then WORKERS - 1
children are forked and every process runs bjoern's loop on it.  bjoern's C
loop runs no Python signal handler while idle, so SIGTERM keeps its default
action, and each child asks the kernel for SIGTERM when its parent dies
(prctl PR_SET_PDEATHSIG): stopping the parent by pid stops them all.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys

import bjoern

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main(argv: list[str]) -> int:
    if len(argv) != 4 or ":" not in argv[3]:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    host, port, workers, target = argv
    module_name, attribute = target.split(":", 1)
    app = getattr(importlib.import_module(module_name), attribute)
    bjoern.listen(app, host, int(port))
    parent = os.getpid()
    for _ in range(int(workers) - 1):
        if os.fork() == 0:
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(0)
            bjoern.run()
            os._exit(0)
    bjoern.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
