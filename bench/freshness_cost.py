"""What the per-request freshness check of a project app costs: a stat per project file the app was built from.

Before each request a worker compares the files of the modules (and
templates) the app was built from with the disk (devserver/project.py,
``Freshness.changed``).  This times that call for projects of 5, 50 and 500
files, against the cost of a hello-world request (~100 µs on this class of
machine, bench/micro.py), and prints one JSON line per size.

    python bench/freshness_cost.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devserver.apps.project import Freshness


def measure(count: int, rounds: int = 2000) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="freshness-") as tmp:
        files = []
        for i in range(count):
            path = os.path.join(tmp, f"module{i}.py")
            Path(path).write_text(f"VALUE = {i}\n")
            files.append(path)
        old = time.time_ns() - 10_000_000_000
        for path in files:  # older than any clock tick: stat alone decides, as for a file not just saved
            os.utime(path, ns=(old, old))
        fresh = Freshness()
        fresh.stamp(files)
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds):
                assert not fresh.changed()
            best = min(best, (time.perf_counter() - started) / rounds)
    return {"files": count, "check_us": round(best * 1e6, 1), "per_file_us": round(best * 1e6 / count, 2)}


def main() -> int:
    for count in (5, 50, 500):
        print(json.dumps(measure(count, 2000 if count < 500 else 200)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
