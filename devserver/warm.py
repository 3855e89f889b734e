"""Warm restarts: new workers replace the old ones with no connection refused.

Some changes cannot be applied in place (Django caches its URL resolver,
app registry and settings in the process; a settings module; an import that
failed half-way).  Then the workers are replaced:

1. Standby processes were started ahead of time, one per worker, with the
   third-party modules the app uses already imported (the warm template:
   :func:`standby_main`).  They wait for "go" and hold no project module.
2. The old workers are told to stop accepting ("pause"); in-flight requests,
   keep-alive connections and live-reload streams carry on.  The listening
   socket stays open in the supervisor, so new connections wait in its
   backlog: none is refused.
3. The standbys get "go": each imports the project and loads the app, then
   accepts.  Once all say they are ready (a ``ProjectUsage(ready=True)``
   event), the old workers tell their browsers to reload and get SIGTERM:
   they finish what is in flight and exit.
4. Fresh standbys are started in the background, with the modules seen so
   far (the preload list grows as the app imports more).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from .control import PageChanged
from .events import LogEvent, WorkerEvent
from .project import Pause
from .projectfiles import ProjectFiles
from .supervisor import Supervisor, _Slot
from .worker import worker_main

READY_TIMEOUT = 60.0  # seconds new workers get to load the app before the old ones stop anyway


def preload(names: Iterable[str], folder: str) -> None:
    """Import third-party ``names`` without letting any project module in.

    The project folder leaves sys.path and DJANGO_SETTINGS_MODULE the
    environment meanwhile: a module that needs the project's settings fails
    here (and is imported later, by the worker, after them).  Failures are
    expected and ignored; whatever project module slipped in is forgotten.
    """
    saved_path = list(sys.path)
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or ".") != folder]
    settings = os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a module that cannot load early loads later
                continue
    finally:
        sys.path[:] = saved_path
        if settings is not None:
            os.environ["DJANGO_SETTINGS_MODULE"] = settings
    rules = ProjectFiles(folder)
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and rules.owns(file):
            del sys.modules[name]


def standby_main(config: Any, sock: Any, event_pipe: Any, control: Any, generation: Any, index: int,
                 names: tuple[str, ...]) -> None:
    """A standby worker: preload, wait for "go", then serve as any worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload(names, config.app_dir)
    try:
        message = control.recv()
    except (EOFError, OSError):
        return  # the supervisor went away
    if message == ("go",):
        worker_main(config, sock, event_pipe, control, generation, index)


class WarmRestarter:
    """Standbys and the restart sequence, for one supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.preload_names: list[str] = list(supervisor.config.preload)
        self._known = set(self.preload_names)
        self._standbys: list[_Slot] = []
        self._standby_names: set[str] = set()
        self._lock = threading.Lock()  # one restart (or standby refill) at a time
        self._ready = threading.Condition()
        self._ready_pids: set[int] = set()
        self.restarts = 0

    # what the workers report -----------------------------------------------------
    def add_preload(self, names: Iterable[str]) -> None:
        with self._ready:
            for name in names:
                if name not in self._known:
                    self._known.add(name)
                    self.preload_names.append(name)

    def note_ready(self, pid: int) -> None:
        with self._ready:
            self._ready_pids.add(pid)
            self._ready.notify_all()

    # standbys ---------------------------------------------------------------------
    def _spawn_standby(self, index: int) -> _Slot:
        sup = self.supervisor
        receiver, sender = sup.ctx.Pipe(duplex=False)
        event_reader, event_writer = sup.ctx.Pipe(duplex=False)
        with self._ready:
            names = tuple(self.preload_names)
        process = sup.ctx.Process(target=standby_main, name=f"devserver-standby-{index}",
                                  # The same listening socket as the worker of this slot: with a socket per
                                  # worker, what the kernel dealt to that socket waits there for this one.
                                  args=(sup.config, sup.sockets[index % len(sup.sockets)], event_writer, receiver,
                                        sup.generation, index, names))
        process.start()
        receiver.close()
        event_writer.close()
        return _Slot(index, process, sender, event_reader, time.monotonic())

    def prepare(self) -> None:
        """Start standbys with the current preload list, in the background."""
        threading.Thread(target=self._refill, name="devserver-standby", daemon=True).start()

    def _refill(self) -> None:
        with self._lock:
            if self.supervisor._stopping.is_set():
                return
            with self._ready:
                current = set(self.preload_names)
            if len(self._standbys) == self.supervisor.config.workers and self._standby_names >= current \
                    and all(s.process.is_alive() for s in self._standbys):
                return
            self._discard_standbys()
            self._standbys = [self._spawn_standby(i) for i in range(self.supervisor.config.workers)]
            self._standby_names = current

    def _discard_standbys(self) -> None:
        for standby in self._standbys:
            standby.control.close()  # EOF: the standby ends
            standby.events.close()
        for standby in self._standbys:
            standby.process.join(2)
            if standby.process.is_alive():
                standby.process.kill()
                standby.process.join(1)
        self._standbys = []

    def stop(self) -> None:
        with self._lock:
            self._discard_standbys()

    # the restart ------------------------------------------------------------------
    def restart(self, reason: str, page_paths: tuple[str, ...]) -> float | None:
        """Replace every worker (see the module docstring); returns ms until the new ones were ready."""
        sup = self.supervisor
        started = time.perf_counter()
        self._pause_current()  # from now on new connections wait in the backlog for the new workers
        with self._lock:
            if sup._stopping.is_set():
                return None
            self._pause_current()  # again: a restart that ran meanwhile started workers that accept
            if len(self._standbys) != sup.config.workers or not all(s.process.is_alive() for s in self._standbys):
                self._discard_standbys()
                self._standbys = [self._spawn_standby(i) for i in range(sup.config.workers)]
            new, self._standbys = self._standbys, []
            with sup._lock:
                old = list(sup.slots)  # as they are now: a crashed worker may have been replaced meanwhile
                for slot in old:
                    _send(slot, Pause())
                for slot in new:
                    _send(slot, ("go",))
                    slot.started = time.monotonic()
                for slot in old:
                    slot.retired = True
                sup.slots = new
                sup._retired.extend(slot.events for slot in old)  # read to their end by the event thread
            sup.sink([WorkerEvent(time.time(), slot.process.pid, "started", slot.index) for slot in new])
            ready = self._wait_ready([slot.process for slot in new])
            elapsed = (time.perf_counter() - started) * 1000
            for slot in old:
                if sup.config.livereload:  # the pages these workers stream to reload onto the new ones
                    _send(slot, PageChanged("reload", page_paths))
            for slot in old:
                slot.process.terminate()  # SIGTERM: finish what is in flight, then exit
            self.restarts += 1
        threading.Thread(target=self._reap, args=(old,), name="devserver-reap", daemon=True).start()
        state = "ready" if ready else "not all ready (see their errors)"
        sup.sink([LogEvent(time.time(), os.getpid(),
                           f"warm restart ({reason}): {len(new)} new worker(s) {state} in {elapsed:.0f} ms", "info")])
        self.prepare()
        return elapsed

    def _pause_current(self) -> list[_Slot]:
        with self.supervisor._lock:
            current = list(self.supervisor.slots)
            for slot in current:
                _send(slot, Pause())
        return current

    def _wait_ready(self, processes: list[Any]) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        with self._ready:
            while True:
                waiting = [p for p in processes if p.pid not in self._ready_pids and p.is_alive()]
                if not waiting:
                    return all(p.pid in self._ready_pids for p in processes)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.supervisor._stopping.is_set():
                    return False
                self._ready.wait(min(remaining, 0.1))

    def _reap(self, old: list[_Slot]) -> None:
        sup = self.supervisor
        deadline = time.monotonic() + sup.config.shutdown_timeout + 2
        for slot in old:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(2)
            sup.sink([WorkerEvent(time.time(), slot.process.pid, "stopped", slot.index, slot.process.exitcode)])
            slot.control.close()


def _send(slot: _Slot, message: object) -> None:
    try:
        slot.control.send(message)
    except (OSError, ValueError):
        pass  # a worker that died meanwhile


__all__ = ["WarmRestarter", "preload", "standby_main"]
