"""Run the dashboard in front of a live supervisor."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from devserver.ipc.config import Config
from devserver.ipc.events import Event

UI_NICENESS = 10  # the dashboard's loop yields the CPU to the workers it watches (Linux: per thread)


def yield_cpu_to_workers() -> None:
    """Lower the CPU priority of this thread (the dashboard's loop) and of the threads it starts.

    On a busy machine a redraw (tens of ms of CPU once a second under load)
    took its share of a core from a worker, and the requests that worker held
    waited: the dashboard tripled p99 latency (bench/dashboard_overhead.py).
    At niceness 10 the workers keep their cores and the dashboard draws in
    what they leave; on an idle machine nothing changes.  The supervisor's
    event reader, started before, keeps its priority.  Linux applies
    niceness to the thread named; elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), UI_NICENESS)
    except (OSError, AttributeError):
        pass


def run_dashboard(config: Config) -> int:
    """Start the server, show the dashboard until ``q``, then stop the server.

    Returns the process exit status: 1 (with a one-line message on stderr)
    when the server cannot start, for instance because the port is taken;
    otherwise the app's return code (0 after a normal quit).  Once started,
    the server is stopped in every case, even if the dashboard crashes.
    """
    # Imported here so that the dashboard modules load without the server.
    from devserver.supervisor.core import StartError, Supervisor
    from devserver.supervisor.watchers import attach_watchers

    # Recorded bodies live in a private folder that lasts as long as the dashboard.
    spool = tempfile.mkdtemp(prefix="devserver-bodies-") if config.body_cap > 0 else ""
    config = replace(config, capture_dir=spool)
    try:
        return _run(config, Supervisor, StartError, attach_watchers)
    finally:
        if spool:
            shutil.rmtree(spool, ignore_errors=True)


class Backlog:
    """The supervisor's sink until the dashboard exists: keeps what arrives, then hands it over.

    The server starts before Textual is imported (its workers need none of
    it, and forked from a supervisor without it they neither wait for it nor
    carry it), so its first events arrive before there is an app to feed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[Event] = []
        self._target: Callable[[list[Event]], None] | None = None

    def __call__(self, batch: list[Event]) -> None:
        with self._lock:
            if self._target is None:
                self._waiting += batch
                return
        self._target(batch)

    def attach(self, target: Callable[[list[Event]], None]) -> None:
        """From now on events go to ``target``, starting with those that waited (in order)."""
        with self._lock:
            if self._waiting:
                target(self._waiting)
            self._waiting = []
            self._target = target


def _run(config: Config, Supervisor: Any, StartError: type[Exception], attach_watchers: Any) -> int:
    started = time.time()
    backlog = Backlog()
    supervisor = Supervisor(config, sink=backlog)
    attach_watchers(supervisor)
    try:
        supervisor.start()
    except StartError as exc:  # raised by the bind, before anything was started
        print(f"devserver: error: {exc}", file=sys.stderr)
        return 1
    except BaseException:  # a partial start (Ctrl-C while starting workers, say)
        supervisor.stop()
        raise
    try:
        from tui.app import DashboardApp

        app = DashboardApp(config, started=started, tune_gc=True)
        app.control = supervisor
        backlog.attach(app.feed)
        yield_cpu_to_workers()
        app.run()
        return app.return_code or 0
    finally:
        supervisor.stop()  # idempotent: `q` has usually stopped it already
