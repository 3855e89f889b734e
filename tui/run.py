"""Run the dashboard in front of a live supervisor."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import replace
from typing import Any

from devserver.config import Config
from tui.app import DashboardApp


def run_dashboard(config: Config) -> int:
    """Start the server, show the dashboard until ``q``, then stop the server.

    Returns the process exit status: 1 (with a one-line message on stderr)
    when the server cannot start, for instance because the port is taken;
    otherwise the app's return code (0 after a normal quit).  Once started,
    the server is stopped in every case, even if the dashboard crashes.
    """
    # Imported here so that the dashboard modules load without the server.
    from devserver.supervisor import StartError, Supervisor
    from devserver.watchers import attach_watchers

    # Recorded bodies live in a private folder that lasts as long as the dashboard.
    spool = tempfile.mkdtemp(prefix="devserver-bodies-") if config.body_cap > 0 else ""
    config = replace(config, capture_dir=spool)
    try:
        return _run(config, Supervisor, StartError, attach_watchers)
    finally:
        if spool:
            shutil.rmtree(spool, ignore_errors=True)


def _run(config: Config, Supervisor: Any, StartError: type[Exception], attach_watchers: Any) -> int:
    app = DashboardApp(config, started=time.time(), tune_gc=True)
    supervisor = Supervisor(config, sink=app.feed)
    attach_watchers(supervisor)
    app.control = supervisor
    try:
        supervisor.start()
    except StartError as exc:  # raised by the bind, before anything was started
        print(f"devserver: error: {exc}", file=sys.stderr)
        return 1
    except BaseException:  # a partial start (Ctrl-C while spawning workers, say)
        supervisor.stop()
        raise
    try:
        app.run()
        return app.return_code or 0
    finally:
        supervisor.stop()  # idempotent: `q` has usually stopped it already
