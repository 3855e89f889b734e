"""The polling watcher, for where the system sends no file events or refuses to watch.

``WATCHFILES_FORCE_POLLING`` is what users set for folders that send no
events (Docker Desktop and WSL2 mounts, NFS), and a full inotify table makes
the watcher fall back to polling by itself.  notify's own poller compares
modification times in whole seconds, so a save in the second of the file's
last write, at the same size, is no change to it and is never served.  This
poller stamps each file as workers stamp modules (``kit/filestamp.py``): size
and mtime in nanoseconds, and the content's hash while the file is younger
than the file clock's tick.

It answers ``watch()`` as watchfiles' Rust notifier does (a set of
``(change, path)``, or ``"stop"`` / ``"timeout"``), so the watcher drives
either the same way.
"""

from __future__ import annotations

import os
import threading
import time

from devserver.kit import filestamp
from devserver.kit.filestamp import Stamp
from devserver.reload.ignored import IGNORED_DIRS

POLL_MS = 300  # notify's own poll delay: a tree is walked about three times a second
ADDED, MODIFIED, DELETED = 1, 2, 3  # watchfiles' Change values


def walk(roots: list[str]) -> dict[str, os.stat_result]:
    """Every file under ``roots`` with its stat, leaving out folders where no change can matter."""
    seen: dict[str, os.stat_result] = {}
    stack = list(roots)
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:  # gone or unreadable since: its files are then deleted ones
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        # The watcher drops changes in hidden folders anyway; not walking them keeps a poll cheap.
                        if entry.name not in IGNORED_DIRS and not entry.name.startswith("."):
                            stack.append(entry.path)
                        continue
                    seen[entry.path] = entry.stat()
                except OSError:
                    continue
    return seen


def stamps(roots: list[str]) -> dict[str, Stamp]:
    return {path: filestamp.of(path, st) for path, st in walk(roots).items()}


def compare(before: dict[str, Stamp], now: dict[str, os.stat_result]) -> tuple[set[tuple[int, str]], dict[str, Stamp]]:
    """What changed since ``before`` (as watchfiles names changes), and the stamps to compare the next walk to."""
    found = {(DELETED, path) for path in before.keys() - now.keys()}
    after: dict[str, Stamp] = {}
    for path, st in now.items():
        old = before.get(path)
        kept = filestamp.check_stat(path, st, old) if old is not None else None
        if kept is None:
            found.add((ADDED if old is None else MODIFIED, path))
            kept = filestamp.of(path, st)
        after[path] = kept
    return found, after


class Poller:
    """Walks ``roots`` every :data:`POLL_MS` and reports what changed since the last walk."""

    def __init__(self, roots: list[str], poll_ms: int = POLL_MS) -> None:
        self.roots = roots
        self.poll_s = poll_ms / 1000
        self.files = stamps(roots)  # now, so an edit after the watcher's start is a change

    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int,
              stop_event: threading.Event) -> set[tuple[int, str]] | str:
        # A batch is one walk's changes: a poll already gathers what happened over POLL_MS, which is more
        # than the notifier's step, so there is nothing to debounce further.
        deadline = time.monotonic() + timeout_ms / 1000
        while not stop_event.wait(self.poll_s):
            found, self.files = compare(self.files, walk(self.roots))
            if found:
                return found
            if time.monotonic() >= deadline:
                return "timeout"
        return "stop"

    def close(self) -> None:
        """Nothing to release: the interface the Rust notifier has."""
