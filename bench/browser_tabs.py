"""Live reload with many tabs: load time of each tab, save-to-reloaded time of all of them.

Starts ``python -m devserver --no-tui`` on a temporary site and a headless
Chromium (driven over the DevTools protocol, with the helpers of
``tests/chromium.py``), opens ``--tabs`` tabs of the same page one after the
other and times each (navigation to live reload connected), then
``--rounds`` times rewrites the page and times from the end of the write
until every tab shows the new text.  Also prints the served script's size and
how many event streams the browser holds (SharedWorker targets).

    python bench/browser_tabs.py [--tabs 10] [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent / "tests")]

from chromium import CHROME, Chromium
from common import ServerSpec, free_port, http_get, python_argv, running

PAGE = "<!DOCTYPE html><html><body><h1 id=title>{token}</h1></body></html>\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds a tab may take to load or reload")
    args = parser.parse_args()
    if CHROME is None:
        print("chromium is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "html_page").mkdir()
        (base / "dynamic").mkdir()
        page = base / "html_page" / "index.html"
        page.write_text(PAGE.format(token="t0"))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        spec = ServerSpec("devserver", python_argv("-m", "devserver", "--no-tui", "--port", str(port), "--workers", "2"),
                          port, {}, "/index.html", cwd=base, env=env)
        with running(spec, base):
            _, _, script = http_get(port, "/__devserver__/livereload.js")
            print(f"script: {len(script)} bytes as served")
            browser = Chromium(base / "profile")
            try:
                run(browser, f"http://127.0.0.1:{port}/", page, args)
            finally:
                browser.stop()
    return 0


def run(browser: Chromium, url: str, page: Path, args: argparse.Namespace) -> None:
    tabs = [browser.new_page() for _ in range(args.tabs)]
    loads = [tab.open(url + "index.html", args.timeout) for tab in tabs]
    print(f"{args.tabs} tabs loaded one after the other: each {fmt(loads)}")
    streams = [t for t in browser.targets("shared_worker") if t["url"].startswith(url)]
    print(f"event streams held by the browser (SharedWorkers): {len(streams)}")
    times = []
    for round_number in range(1, args.rounds + 1):
        token = f"t{round_number}"
        page.write_text(PAGE.format(token=token))
        saved = time.monotonic()
        for tab in tabs:
            tab.wait_for(f"document.getElementById('title')?.textContent === '{token}'"
                         " && devserverLiveReload.connected", args.timeout)
        times.append(time.monotonic() - saved)
    print(f"save -> all {args.tabs} tabs reloaded and connected again, {args.rounds} rounds: {fmt(times)}")
    for tab in tabs:
        browser.close_page(tab)


def fmt(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
