"""Before/after: two checkouts of devserver, run in alternation under the same load, compared per round.

    python bench/ab.py BEFORE_DIR AFTER_DIR [--case app|script|close|static|flask] [--rounds 5] [--duration 5]

Each round starts devserver from BEFORE_DIR and then from AFTER_DIR (their
order swapped every other round), with the directory first on PYTHONPATH,
warms it up, runs wrk, and reads the server's CPU time (every process of the
tree, /proc/PID/stat).  Printed per round and as medians: req/s, server CPU
µs per request, and the after/before ratios of both, so a change is judged
on the same minutes of a busy machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import servers
from common import cpu_seconds, free_port, make_site, process_tree, run_wrk, running

CASES = {
    "app": (servers.devserver_app, "hello", ()),
    "script": (servers.devserver_script, "hello", ()),
    "close": (servers.devserver_app, "hello", ("Connection: close",)),
    "static": (servers.devserver_files, "1k", ()),
    "flask": (servers.devserver_flask, "flask", ()),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--case", choices=sorted(CASES), default="app")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    opts = parser.parse_args(argv)
    build, case, headers = CASES[opts.case]
    results: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="devserver-ab-") as tmp:
        site = make_site(Path(tmp))
        logs = Path(tmp) / "logs"
        logs.mkdir()
        for round_ in range(opts.rounds):
            order = [("before", opts.before), ("after", opts.after)]
            for label, checkout in order if round_ % 2 == 0 else order[::-1]:
                spec = build(site, free_port(), opts.workers)
                spec = replace(spec, name=f"{spec.name}-{label}", env={**spec.env, "PYTHONPATH": str(checkout.resolve())})
                with running(spec, logs) as server:
                    url = spec.url(case)
                    run_wrk(url, opts.conns, 1, headers=headers)
                    pids = process_tree(server.proc.pid)
                    before = cpu_seconds(pids)
                    result = run_wrk(url, opts.conns, opts.duration, headers=headers)
                    cpu_us = (cpu_seconds(pids) - before) * 1e6 / max(1, result.requests)
                results[label].append((result.requests_per_sec, cpu_us))
                print(f"round {round_ + 1} {label:<6} {result.requests_per_sec:9,.0f} req/s {cpu_us:7.1f} µs CPU/req",
                      flush=True)
    rps_ratio = [a[0] / b[0] for a, b in zip(results["after"], results["before"])]
    cpu_ratio = [a[1] / b[1] for a, b in zip(results["after"], results["before"])]
    for label in ("before", "after"):
        print(f"{label:<6} median {statistics.median(r[0] for r in results[label]):9,.0f} req/s "
              f"{statistics.median(r[1] for r in results[label]):7.1f} µs CPU/req")
    print(f"after/before: req/s {statistics.median(rps_ratio):.2f}× (rounds "
          f"{', '.join(f'{x:.2f}' for x in rps_ratio)}), CPU/req {statistics.median(cpu_ratio):.2f}× (rounds "
          f"{', '.join(f'{x:.2f}' for x in cpu_ratio)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
