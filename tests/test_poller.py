"""The polling watcher: the saves notify's poller misses (same size, same second) are changes, and noise is not walked."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from devserver.kit.filestamp import RACY_NS
from devserver.reload.poller import ADDED, DELETED, MODIFIED, Poller
from devserver.reload.watcher import Watcher

DEADLINE = 10.0


def changes_of(poller: Poller) -> set[tuple[int, str]]:
    """The next batch the poller reports, within the deadline."""
    stop = threading.Event()
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        found = poller.watch(300, 40, 1000, stop)
        if isinstance(found, set):
            return found
    raise AssertionError("the poller reported nothing")


def set_mtime_ns(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def test_a_same_size_save_in_the_same_second_is_a_change(tmp_path: Path) -> None:
    module = tmp_path / "app.py"
    module.write_text('VERSION = "v1"\n')
    second = (time.time_ns() // 1_000_000_000 - 10) * 1_000_000_000  # an old second: no hash, stat alone decides
    set_mtime_ns(module, second + 100_000_000)
    poller = Poller([str(tmp_path)], poll_ms=10)
    module.write_text('VERSION = "v2"\n')
    set_mtime_ns(module, second + 600_000_000)  # the same whole second, the same size
    assert changes_of(poller) == {(MODIFIED, str(module))}


def test_a_same_size_save_within_one_clock_tick_is_a_change(tmp_path: Path) -> None:
    module = tmp_path / "app.py"
    module.write_text('VERSION = "v1"\n')
    tick = time.time_ns() - RACY_NS // 10  # young: the stamp keeps the content's hash
    set_mtime_ns(module, tick)
    poller = Poller([str(tmp_path)], poll_ms=10)
    module.write_text('VERSION = "v2"\n')
    set_mtime_ns(module, tick)  # what a coarse file clock gives a second save: the same mtime to the nanosecond
    assert changes_of(poller) == {(MODIFIED, str(module))}


def test_added_and_deleted_files_are_told_apart(tmp_path: Path) -> None:
    old = tmp_path / "old.py"
    old.write_text("x = 1\n")
    (tmp_path / "pkg").mkdir()
    poller = Poller([str(tmp_path)], poll_ms=10)
    old.unlink()
    new = tmp_path / "pkg" / "new.py"
    new.write_text("y = 2\n")
    assert changes_of(poller) == {(DELETED, str(old)), (ADDED, str(new))}


def test_tools_folders_and_hidden_folders_are_not_walked(tmp_path: Path) -> None:
    noise = [".git/HEAD", ".venv/lib/x.py", "node_modules/pad/index.js", "__pycache__/app.cpython-311.pyc",
             "lib/site-packages/vendored.py", ".mypy_cache/3.11/app.json"]
    for name in noise:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("before\n")
    poller = Poller([str(tmp_path)], poll_ms=10)
    for name in noise:
        (tmp_path / name).write_text("after, longer\n")
    sentinel = tmp_path / "app.py"
    sentinel.write_text("z = 3\n")
    assert changes_of(poller) == {(ADDED, str(sentinel))}


def test_a_set_stop_event_ends_the_wait_and_an_idle_wait_times_out(tmp_path: Path) -> None:
    poller = Poller([str(tmp_path)], poll_ms=10)
    assert poller.watch(300, 40, 30, threading.Event()) == "timeout"
    stop = threading.Event()
    stop.set()
    assert poller.watch(300, 40, 1000, stop) == "stop"


def test_forced_polling_gets_this_poller_and_not_notify_s(tmp_path: Path) -> None:
    assert isinstance(Watcher.notifier([str(tmp_path)], True), Poller)
    events = Watcher.notifier([str(tmp_path)], False)
    try:
        assert not isinstance(events, Poller)
    finally:
        events.close()
