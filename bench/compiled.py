"""A mypyc-compiled copy of a checkout's request path, to measure beside the pure-Python one (issue 25).

The decision the figures made is in docs/bench/compiled.md: the compiled
build did not remove enough of devserver's instructions to be kept, so
``pip install .`` installs pure Python and compiles nothing.  This is the
recipe, so the measurement can be repeated on a later tree:

1. the checkout's tracked files (``git ls-files``) are copied to ``OUT``;
2. ``--set`` names the modules mypyc compiles there, in place: each
   ``module.cpython-*.so`` lands beside its ``module.py``, and Python
   imports the extension first, so ``PYTHONPATH=OUT`` runs the compiled
   build and every other module stays interpreted;
3. the time the compile took is printed (issue 25 asks an install under 60 s).

Then, for instance::

    python bench/compiled.py /tmp/devserver-compiled
    python bench/overhead.py --case hello --servers devserver --checkout /tmp/devserver-compiled
    python bench/instructions.py --case flask . /tmp/devserver-compiled

Needs mypy (the ``[test]`` extra pins it; mypyc ships with it) and a C compiler.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# What the profile of a hello request carries (bench/profile_request.py), as far as mypyc compiles it.  Left out,
# with why: worker/eventqueue.py (mypyc 2.4 writes its ``_thread`` attribute as the C keyword ``__thread``);
# handlers/exchange.py (ClientGone subclasses ConnectionError: a built-in base mypyc cannot compile); kit/memo.py
# (a dict subclass, the same); ipc/events.py (its compiled frozen dataclasses do not unpickle: the supervisor's
# reader fails with FrozenInstanceError on the first batch); the asyncio loop and httptools' llhttp (not ours, or C).
SETS = {
    # the sans-IO HTTP layer, the router and the connection
    "protocol": (
        "devserver/http/parser.py", "devserver/http/cycle.py", "devserver/http/framing.py", "devserver/http/target.py",
        "devserver/http/hostcheck.py", "devserver/http/chunks.py", "devserver/http/dates.py",
        "devserver/http/statuses.py", "devserver/handlers/routes.py", "devserver/worker/connection.py",
        "devserver/worker/inflight.py",
    ),
}
# and with it the worker's request handling, the WSGI call, static files, and the helpers they call per request
SETS["request"] = (
    *SETS["protocol"], "devserver/worker/process.py", "devserver/handlers/wsgi.py", "devserver/handlers/static.py",
    "devserver/handlers/appcall.py", "devserver/debug/capture.py",
    "devserver/debug/requestlogs.py", "devserver/worker/threadpool.py", "devserver/kit/timers.py",
)


def copy_checkout(checkout: Path, out: Path) -> None:
    """The tracked files of ``checkout``, as they are in its work tree, into a fresh ``out``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=checkout, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        source = checkout / name
        if name and source.is_file():
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where the compiled copy goes (replaced if it exists)")
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--set", choices=sorted(SETS), default="protocol", help="which modules are compiled (default %(default)s)")
    opts = parser.parse_args(argv)
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        print("bench/compiled.py: no C compiler (cc or gcc) on PATH")
        return 2
    out = opts.out.resolve()
    copy_checkout(opts.checkout.resolve(), out)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mypyc", *SETS[opts.set]], cwd=out, capture_output=True, text=True)
    took = time.monotonic() - started
    if result.returncode != 0:
        print("\n".join(line for line in result.stdout.splitlines() if "error" in line) or result.stderr)
        print(f"bench/compiled.py: mypyc failed after {took:.0f} s")
        return 1
    built = sorted(str(p.relative_to(out)) for p in out.glob("devserver/**/*.so"))
    print(f"compiled {len(built)} modules of set {opts.set!r} in {took:.0f} s into {out}")
    print("\n".join(f"  {name}" for name in built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
