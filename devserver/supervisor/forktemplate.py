"""The supervisor's handle on a warm template process (what runs in it: :mod:`devserver.supervisor.warmtemplate`).

A template is a multiprocessing forkserver of its own (not the module-wide
one): a new template can be started when the old one's code went stale
while the old one lives on until the workers forked from it have exited
(their exit status reaches the supervisor through it).  Where there is no
forkserver (Windows), or where CPython's forkserver internals changed
(:func:`devserver.kit.interpreter.own_forkservers`), :func:`available` is
False and standbys are spawned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from devserver.kit import filestamp, interpreter
from devserver.supervisor.warmtemplate import ENV, TemplateReport, decode


def available() -> bool:
    return interpreter.own_forkservers()


class Template:
    """One template: started on the first fork, retired when a newer one replaces it."""

    def __init__(self, names: tuple[str, ...], folder: str, setup: str | None, report: str) -> None:
        self.server = interpreter.ForkServer(["devserver.supervisor.warmtemplate"])
        self.names = frozenset(names)
        self.report_path = report
        self._spec = json.dumps({"names": list(names), "folder": folder, "setup": setup, "report": report})
        self._report: TemplateReport | None = None
        self.retired = False

    def start(self, target: Callable[..., object], name: str, args: tuple[object, ...]) -> BaseProcess:
        """A process forked from the template (which starts, and loads, on the first one); raises if it cannot."""
        process = self.server.context.Process(target=target, name=name, args=args)
        self.server.start(process, {ENV: self._spec})  # read by the template when it starts
        return process

    def report(self) -> TemplateReport | None:
        """What the template wrote once loaded (None while it loads)."""
        if self._report is None:
            try:
                with open(self.report_path) as f:
                    self._report = json.load(f)
            except (OSError, ValueError):
                return None
        return self._report

    @property
    def failed(self) -> bool:
        report = self.report()
        return bool(report and report.get("failed"))

    def current(self) -> bool:
        """True unless a project file the template read changed since (then every fork has old code)."""
        report = self.report()
        if report is None:
            return True  # still loading: what it reads now is what is on disk
        return all(filestamp.check(path, decode(fields)) is not None for path, fields in report["files"].items())

    def loaded(self) -> int:
        report = self.report()
        return len(report["files"]) if report else 0

    def alive(self) -> bool:
        pid = self.server.pid
        if pid is None:
            return not self.retired  # not started yet
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return done == 0

    def retire(self) -> None:
        """Let the template go: it exits once the last process forked from it has."""
        self.retired = True
        self.server.release()
        with contextlib.suppress(OSError):
            os.unlink(self.report_path)

    def end(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a retired template to exit, then kill it."""
        deadline = time.monotonic() + timeout
        while not self.reap():
            if time.monotonic() >= deadline:
                pid = self.server.pid
                if pid is not None:  # as reap() found it: running
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                self.reap()
                return
            time.sleep(0.02)  # a forkserver is not our multiprocessing child: it has no sentinel to wait on

    def reap(self) -> bool:
        """True once a retired template's process has exited (and is reaped)."""
        pid = self.server.pid
        if pid is None:
            return True
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return done != 0
