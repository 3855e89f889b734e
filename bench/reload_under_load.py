"""Reload under load: wrk hammers a dynamic module while it is rewritten every 100 ms.

Prints wrk's totals and the number of edits; the target is zero failed
requests (no socket errors, no non-2xx answers) and no refused connection.

    python bench/reload_under_load.py [--seconds 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SOURCE = (
    "TOKEN = {token}\n\n\n"
    "def application(environ, start_response):\n"
    "    body = str(TOKEN).encode()\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n"
    "    return [body]\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=float, default=0.1, help="seconds between edits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "html_page").mkdir()
        (site / "dynamic").mkdir()
        module = site / "dynamic" / "token.py"
        module.write_text(SOURCE.format(token=0))
        port = free_port()
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine: .pyc files are written
        log = open(site / "server.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "devserver", "--no-tui", "--port", str(port),
                                   "--workers", str(args.workers)], cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while "listening" not in (site / "server.log").read_text():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("devserver did not start")
                time.sleep(0.05)
            stop = threading.Event()
            edits = 0

            def editor() -> None:
                nonlocal edits
                while not stop.wait(args.every):
                    edits += 1
                    module.write_text(SOURCE.format(token=edits * 7919 % 100_000))  # sizes vary too

            thread = threading.Thread(target=editor)
            thread.start()
            wrk = subprocess.run(["wrk", "-t2", "-c50", f"-d{args.seconds}s", f"http://127.0.0.1:{port}/token.py"],
                                 capture_output=True, text=True)
            stop.set()
            thread.join()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
            log.close()
        reloads = len(re.findall(r"^reloaded ", (site / "server.log").read_text(), re.M))
    out = wrk.stdout
    print(out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    print(f"edits: {edits}, reload events: {reloads}, requests: {total.group(1) if total else '?'}, "
          f"socket errors: {errors.group(1) if errors else 'none'}, non-2xx: {non2xx.group(1) if non2xx else 0}")
    ok = errors is None and non2xx is None and total is not None
    print("PASS: zero failed requests" if ok else "MISS: some requests failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
