"""The serial part of a start in instructions: what the supervisor runs from its launch to its first fork.

Until it forks its first worker the supervisor is the whole start (one
process, one thread: the options, the bind, every import the workers share);
afterwards the workers start in parallel.  That part is counted here by
valgrind (callgrind, ``--dump-before=fork``), a figure a busy machine cannot
move, for each checkout given, with ``devserver hello:application --no-tui``
and 2 workers as bench/startup.py starts it: bytecode caching on, after one
launch without valgrind that writes the ``.pyc`` files (a user's second
launch).  The interpreter's own start (``python -c pass``) is counted too,
for scale: every Python server pays it.

    PYTHONPATH=$PWD python bench/start_instructions.py BEFORE_CHECKOUT . [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import servers
from common import BenchError, free_port, make_site, start_server, stop_server
from startup import START_TIMEOUT, _first_200

VALGRIND_TIMEOUT = 20 * START_TIMEOUT  # a start runs some fifty times slower under callgrind


def _total(dump: Path) -> int:
    """The instruction count of one callgrind dump."""
    found = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.M)
    if found is None:
        raise BenchError(f"{dump}: no instruction total")
    return int(found[1])


def until_first_fork(checkout: Path, workers: int, base: Path) -> int:
    """The supervisor's instructions from launch to its first fork, for the devserver in ``checkout``."""
    site_dir = base / f"site-{len(list(base.iterdir()))}"
    site_dir.mkdir()
    site = make_site(site_dir)
    logs = site_dir / "logs"
    logs.mkdir()
    out = site_dir / "callgrind"
    env = {"PYTHONPATH": str(checkout)}
    for valgrind in (False, True):  # the first launch writes the bytecode the second finds
        spec = servers.devserver_app(site, free_port(), workers)
        argv = spec.argv
        if valgrind:
            argv = ("valgrind", "--tool=callgrind", "--dump-before=fork", f"--callgrind-out-file={out}.%p", *argv)
        spec = replace(spec, argv=argv, env={**spec.env, **env})
        server = start_server(spec, logs)
        try:
            _first_200(spec.port, spec.paths["hello"], lambda proc=server.proc: proc.poll() is None,
                       time.monotonic() + (VALGRIND_TIMEOUT if valgrind else START_TIMEOUT))
        finally:
            stop_server(server, grace=120.0)
    first_dump = Path(f"{out}.{server.proc.pid}.1")  # dumped just before the first fork
    if not first_dump.exists():
        raise BenchError(f"no dump at the first fork ({first_dump}): did the supervisor fork its workers?")
    return _total(first_dump)


def interpreter_start() -> int:
    """``python -c pass`` under callgrind: the interpreter's own start, as every Python server has it."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", "pass"],
                       check=True, capture_output=True)
        return _total(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    opts = parser.parse_args(argv)
    for checkout in opts.checkouts:
        if not (checkout / "devserver" / "__init__.py").is_file():
            parser.error(f"{checkout}: no devserver package there")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the servers inherit it: caching on, as a user has it
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="devserver-start-instructions-") as folder:
        try:
            for checkout in opts.checkouts:
                counts[str(checkout)] = until_first_fork(checkout.resolve(), opts.workers, Path(folder))
        except BenchError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
    print(f"load average {os.getloadavg()[0]:.2f} (instruction counts do not depend on it)")
    print(f"{interpreter_start():>14,}  python -c pass (the interpreter's start)")
    first = next(iter(counts.values()))
    for name, count in counts.items():
        print(f"{count:>14,}  supervisor, launch to first fork: {name}" +
              (f"  ({(count - first) / first:+.1%})" if count != first else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
