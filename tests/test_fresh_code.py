""""The next request after a save runs the new code", taken literally, and imports off the loop.

No waiting for the watcher here: each request is sent the moment ``write()``
returns, with bytecode writing on (a user's machine writes .pyc files).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from conftest import LiveServer, client_connections, http_get, wait_until


def get(server: LiveServer, path: str, timeout: float = 20) -> tuple[int, str]:
    status, _, body = http_get(server, path, timeout)
    return status, body.decode("utf-8", "replace")


def with_bytecode() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def source(value: str) -> str:
    # Same length for every value of the same length: same-size saves, the case .pyc checks miss.
    return f"def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'{value}']\n"


def test_a_request_right_after_each_save_runs_the_saved_code(server_factory, site: Path) -> None:
    dynamic = site / "dynamic"
    module = dynamic / "fresh.py"
    module.write_text(source("v000"))
    server = server_factory("--workers", "2", env=with_bytecode())
    assert get(server, "/fresh.py") == (200, "v000")
    stale = []
    for i in range(1, 101):
        if i % 10 == 0:
            # A rename: the old URL must stop answering at once, the new one answer.
            renamed = dynamic / f"fresh{i}.py"
            module.rename(renamed)
            status, _ = get(server, "/fresh.py")
            if status != 404:
                stale.append((i, "old name still served", status))
            renamed.rename(module)
        value = f"v{i:03d}"
        module.write_text(source(value))
        for _ in range(2):  # both workers, whichever accepts
            got = get(server, "/fresh.py")
            if got != (200, value):
                stale.append((i, value, got))
    assert stale == []
    assert list((dynamic / "__pycache__").glob("fresh*.pyc")), "bytecode writing was on: .pyc files exist"


def test_a_slow_import_does_not_hold_up_other_requests(server_factory, site: Path) -> None:
    """While one module's import runs (in the pool), a static file is answered; ordering, not timing."""
    started, release = site / "import-started", site / "import-release"
    (site / "dynamic" / "slowimport.py").write_text(
        "import pathlib, time\n"
        f"pathlib.Path({str(started)!r}).write_text('x')\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n"
        "    time.sleep(0.01)\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'imported']\n")
    server = server_factory("--workers", "1")
    result: list[tuple[int, str]] = []
    thread = threading.Thread(target=lambda: result.append(get(server, "/slowimport.py", timeout=60)))
    thread.start()
    try:
        wait_until(started.exists, 30, "the import beginning")
        # The one worker is inside the import right now; a static file must still be served.
        assert get(server, "/index.html", timeout=10)[0] == 200
        assert not result, "the slow request cannot have finished: its import is still held"
    finally:
        release.write_text("go")
        thread.join(60)
    assert result == [(200, "imported")]


def test_a_save_held_apart_between_truncation_and_write_is_waited_for(server_factory, site: Path) -> None:
    # An editor truncates, then writes; a busy machine can hold the two apart for longer than the worker's
    # 0.1 s settle time.  A request that imports the empty file meanwhile waits for the write (within 2 s)
    # instead of answering 404 "no application" (what tests/test_reload_under_load.py caught).
    module = site / "dynamic" / "held.py"
    module.write_text(source("v000"))
    server = server_factory("--workers", "1", env=with_bytecode())
    assert get(server, "/held.py") == (200, "v000")
    [worker] = server.worker_pids()
    wait_until(lambda: client_connections(worker) == 0, 20, "the worker closing the first request's connection")
    answers: list[tuple[int, str]] = []
    with open(module, "w") as f:  # truncated: empty until the write below
        asker = threading.Thread(target=lambda: answers.append(get(server, "/held.py")))
        asker.start()
        # The request is in the worker (its connection accepted, the request sent with it) before the
        # file's empty time is counted, or a late request would find the file written and prove nothing.
        wait_until(lambda: client_connections(worker) == 1, 20, "the request's connection in the worker")
        time.sleep(0.4)  # the scenario itself: the file stays empty for four settle times
        f.write(source("v001"))
    asker.join(20)
    assert answers == [(200, "v001")]
