"""Warm restarts: new workers replace the old ones with no connection refused.

Some changes cannot be applied in place (Django caches its URL resolver,
app registry and settings in the process; a settings module; an import that
failed half-way).  Then the workers are replaced:

1. Standby processes wait, one per worker, forked from the warm template
   (:mod:`devserver.supervisor.forktemplate`: a forkserver that imported the app's
   third-party modules and, for Django, ran ``django.setup()``), or spawned
   where there is no forkserver.  A change to a file the template read (a
   model, the settings) builds a new template first.
2. On a change (from the watcher, or from a worker that found it before a
   request: :meth:`WarmRestarter.request`), the current workers stop
   accepting at once; in-flight requests, keep-alive connections and
   live-reload streams carry on.  The listening sockets stay open in the
   supervisor, so new connections wait in their backlog: none is refused.
3. The standbys get "go": each imports the project and loads the app, says
   it is ready, and waits.  If newer changes came in meanwhile, they are
   dropped unused and the next restart loads everything at once (edits
   coalesce rather than queue).  Otherwise they get "serve" and accept; the
   old workers tell their browsers to reload and get SIGTERM: they finish
   what is in flight and exit.
4. Fresh standbys are forked in the background.

``DEVSERVER_RESTART_TIMELINE=1`` logs when each step ended (bench/real_apps.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import wait

from devserver.apps import project
from devserver.apps.project import START_MARKS
from devserver.ipc.channels import ControlReceiver, EventWriter, Generation, Process
from devserver.ipc.config import Config
from devserver.ipc.control import Go, PageChanged, Pause
from devserver.ipc.events import LogEvent, ReloadEvent, WorkerEvent
from devserver.kit import filestamp
from devserver.supervisor import forktemplate
from devserver.supervisor.core import Supervisor, WorkerSlot
from devserver.supervisor.warmtemplate import preload
from devserver.worker.handoff import Handoff
from devserver.worker.process import worker_main

READY_TIMEOUT = 60.0  # seconds new workers get to load the app before the old ones stop anyway


def standby_main(config: Config, sock: socket.socket, event_pipe: EventWriter, control: ControlReceiver,
                 generation: Generation, index: int, names: tuple[str, ...], handoff: Handoff | None = None) -> None:
    """A standby worker: preload, wait for "go", then serve as any worker."""
    START_MARKS.append(("standby started", time.time()))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if names:  # spawned: a standby forked from the template has them already
        preload(names, config.app_dir or ".")
        START_MARKS.append(("preloaded", time.time()))
    try:
        message = control.recv()
    except (EOFError, OSError):
        return  # the supervisor went away
    START_MARKS.append(("go received", time.time()))
    if isinstance(message, Go):
        project.TAKEOVER_WAIT = True  # load, say "ready", then wait for "serve" before accepting
        worker_main(config, sock, event_pipe, control, generation, index, handoff=handoff)


@dataclass
class _Job:
    """A restart asked for, with every change that came in before it started (they coalesce)."""

    reasons: list[str]
    pages: set[str]
    paths: set[str]
    modules: set[str]
    errors: list[str]
    seen: float  # time.time() of the first change
    report: bool  # emit a ReloadEvent once done (False for the dashboard's R)


class WarmRestarter:
    """Standbys, the warm template they are forked from, and the restart sequence, for one supervisor.

    Restarts run one at a time in their own thread (:meth:`request` returns at
    once); the changes that arrive meanwhile make one more restart, which
    loads the newest code once.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        config = supervisor.config
        self.preload_names: list[str] = list(config.preload)
        self._known = set(self.preload_names)
        self._standbys: list[WorkerSlot] = []
        self._standby_names: set[str] = set()
        self._lock = threading.Lock()  # one restart (or standby refill) at a time
        self._ready = threading.Condition()
        self._ready_pids: set[int] = set()
        self._marks: dict[int, tuple[tuple[str, float], ...]] = {}
        self._jobs = threading.Condition()
        self._pending: _Job | None = None
        self._runner: threading.Thread | None = None
        self._go_stamps: dict[str, filestamp.Stamp] = {}  # changed files as they were when a restart's "go" went
        self._gate = threading.Lock()  # orders pausing the workers and a restart's "go"
        self._paused_since_go = False  # the current workers were told to stop accepting: they must be replaced
        self.uses_template = forktemplate.available() and os.environ.get("DEVSERVER_WARM_TEMPLATE_OFF") is None
        self.setup_module: str | None = None  # imported in the template: set for Django (the WSGI module)
        self.template: forktemplate.Template | None = None
        # Bumped when the supervisor's environment changed (a .env edit): processes started before hold the old one.
        self.environment = 0
        self._template_environment = 0
        self._standbys_environment = 0
        self._retired_templates: list[forktemplate.Template] = []
        self._ending: list[Process] = []  # processes told to end (old workers draining, dropped new ones): stop() waits
        self._reports = tempfile.mkdtemp(prefix="devserver-template-")
        self._template_count = 0
        self.restarts = 0
        self.timeline = os.environ.get("DEVSERVER_RESTART_TIMELINE") is not None  # a line per step, for bench/
        # What the old workers' pages hear once the new workers answer (the project watcher's choice).
        self.page_message: Callable[[tuple[str, ...]], PageChanged] = lambda pages: PageChanged("reload", pages)

    # what the workers report -----------------------------------------------------
    def add_preload(self, names: Iterable[str]) -> None:
        with self._ready:
            for name in names:
                if name not in self._known:
                    self._known.add(name)
                    self.preload_names.append(name)

    def note_ready(self, pid: int, marks: tuple[tuple[str, float], ...] = ()) -> None:
        with self._ready:
            self._ready_pids.add(pid)
            self._marks[pid] = marks
            self._ready.notify_all()

    def environment_changed(self) -> None:
        """The standbys and the template started before now have an old environment: the next restart starts new ones."""
        self.environment += 1

    def template_files(self) -> frozenset[str]:
        """The project files the current warm template read (workers forked from the supervisor may not report
        them: a Django set up before the fork never imports its models again)."""
        template = self.template
        report = template.report() if template is not None else None
        return frozenset(report["files"]) if report else frozenset()

    # standbys ---------------------------------------------------------------------
    def _spawn_standby(self, index: int, template: forktemplate.Template | None) -> WorkerSlot:
        sup = self.supervisor
        with self._ready:
            names = () if template is not None else tuple(self.preload_names)
        receiver, sender = sup.ctx.Pipe(duplex=False)
        event_reader, event_writer = sup.ctx.Pipe(duplex=False)
        # The same listening socket as the worker of this slot: with a socket per worker, what the
        # kernel dealt to that socket waits there for this one.
        args = (sup.config, sup.sockets[index % len(sup.sockets)], event_writer, receiver, sup.generation, index, names,
                sup.handoff)
        name = f"devserver-standby-{index}"
        try:
            if template is None:
                process: Process = sup.ctx.Process(target=standby_main, name=name, args=args)
                process.start()
            else:
                process = template.start(standby_main, name, args)
        finally:
            receiver.close()  # the standby's ends of its pipes: its own copies are what count now
            event_writer.close()
        return WorkerSlot(index, process, sender, event_reader, time.monotonic())

    def _template(self) -> forktemplate.Template | None:
        """The template to fork standbys from (a new one if the last went stale), or None: spawn them."""
        if not self.uses_template:
            return None
        current = self.template
        same_environment = self._template_environment == self.environment
        if current is not None and current.alive() and current.current() and same_environment:
            return current
        if current is not None and current.failed and current.current() and same_environment:
            return None  # its setup failed and nothing it read changed: it would fail again
        if current is not None:
            why = ("the environment changed" if not same_environment else
                   "a file it read changed" if not current.current() else "its process ended")
            self.supervisor.sink([LogEvent(time.time(), os.getpid(), f"warm template: a new one starts ({why})",
                                           "info")])
        self._retire_template()
        with self._ready:
            names = tuple(self.preload_names)
        self._template_count += 1
        self._template_environment = self.environment
        report = os.path.join(self._reports, f"template-{self._template_count}.json")
        self.template = forktemplate.Template(names, self.supervisor.config.app_dir or ".", self.setup_module, report)
        return self.template

    def _retire_template(self) -> None:
        if self.template is not None:
            self.template.retire()
            self._retired_templates.append(self.template)
            self.template = None
        self._retired_templates = [t for t in self._retired_templates if not t.reap()]

    def _standbys_usable(self) -> bool:
        if len(self._standbys) != self.supervisor.config.workers or self._standbys_environment != self.environment \
                or not all(s.process.is_alive() for s in self._standbys):
            return False
        if self._standbys_template is not None:
            return self._standbys_template is self.template and self.template.current()
        # Spawned: right where there is no template to fork from (none, or one whose setup fails as things are).
        template = self.template
        if self.uses_template and not (template is not None and template.failed and template.current()):
            return False
        with self._ready:
            current = set(self.preload_names)
        return self._standby_names >= current

    _standbys_template: forktemplate.Template | None = None

    def _ensure_standbys(self) -> None:
        """Standbys for every slot, forked from a current template where there is one (under self._lock)."""
        if self._standbys_usable():
            return
        self._discard_standbys()
        self._standbys_environment = self.environment
        template = self._template()
        standbys: list[WorkerSlot] = []
        if template is not None:
            try:
                standbys = [self._spawn_standby(i, template) for i in range(self.supervisor.config.workers)]
                if template.failed or not template.current():  # it failed, or read a file being saved: no use
                    raise RuntimeError("template unusable")
            except (OSError, EOFError, RuntimeError, ValueError):
                self._stop_standbys(standbys)
                standbys = []
                if not template.failed:
                    self._retire_template()
                template = None
        if not standbys:
            standbys = [self._spawn_standby(i, None) for i in range(self.supervisor.config.workers)]
        self._standbys = standbys
        self._standbys_template = template
        with self._ready:
            self._standby_names = set(self.preload_names)

    def prepare(self) -> None:
        """Start standbys (and the template) in the background."""
        threading.Thread(target=self._refill, name="devserver-standby", daemon=True).start()

    def _refill(self) -> None:
        with self._lock:
            if self.supervisor.stopping:
                return
            self._ensure_standbys()

    def _discard_standbys(self) -> None:
        self._stop_standbys(self._standbys)
        self._standbys = []

    @staticmethod
    def _stop_standbys(standbys: list[WorkerSlot]) -> None:
        for standby in standbys:
            standby.control.close()  # EOF: the standby ends
            standby.events.close()
        for standby in standbys:
            standby.process.join(2)
            if standby.process.is_alive():
                standby.process.kill()
                standby.process.join(1)

    def _told_to_end(self, processes: Iterable[Process]) -> None:
        """Remember ``processes`` for stop(); those that ended already are forgotten (each kept Process holds its
        sentinel's descriptors: a server restarted all day must not run out of them)."""
        # Ended is a readable sentinel, not exitcode: polling the exit status would race the reaping threads.
        ended = set(wait([process.sentinel for process in self._ending], timeout=0)) if self._ending else set()
        self._ending = [process for process in self._ending if process.sentinel not in ended]
        self._ending.extend(processes)

    def stop(self) -> None:
        """End every process a restart started (called once the supervisor is stopping), within the drain limit.

        A restart under way gives up at once (it sees the supervisor stopping
        before its new workers would take the socket) and ends them; old
        workers still draining, standbys and templates end too: none is left
        listening or answering after the server said it stopped.
        """
        deadline = time.monotonic() + self.supervisor.config.shutdown_timeout + 2
        with self._jobs:
            self._pending = None
            self._jobs.notify_all()
        with self._lock:
            self._discard_standbys()
            self._retire_template()
            templates, self._retired_templates = self._retired_templates, []
        _end_by(self._ending, deadline)
        for template in templates:
            template.end(max(0.0, deadline - time.monotonic()))
        shutil.rmtree(self._reports, ignore_errors=True)

    # the restart ------------------------------------------------------------------
    def request(self, reason: str, pages: Iterable[str] = (), paths: Iterable[str] = (), modules: Iterable[str] = (),
                errors: str | None = None, report: bool = True, from_worker: int | None = None) -> None:
        """Ask for a restart; returns at once.  The current workers stop accepting now (the new ones will).

        ``from_worker``: the pid of a worker that found the change before a
        request and stopped accepting; unless it was replaced already, the
        restart must happen even if the change looks loaded.
        """
        paths = set(paths)
        with self._gate:
            if from_worker is not None:
                if from_worker not in self.supervisor.worker_pids():
                    return  # a worker a restart replaced already: its successor has the change
            elif self._covered(paths) and not self._paused_since_go:
                return  # a worker's notice and the watcher's event for one save: its restart has loaded it
            self.supervisor.broadcast(Pause())
            self._paused_since_go = True
        with self._jobs:
            job = self._pending
            if job is None:
                job = self._pending = _Job([], set(), set(), set(), [], time.time(), report)
            if reason not in job.reasons:
                job.reasons.append(reason)
            job.pages.update(pages)
            job.paths.update(paths)
            job.modules.update(modules)
            if errors:
                job.errors.append(errors)
            job.report = job.report or report
            self._jobs.notify_all()
            if self._runner is None:
                self._runner = threading.Thread(target=self._run, name="devserver-restart", daemon=True)
                self._runner.start()

    def _run(self) -> None:
        sup = self.supervisor
        while not sup.stopping:
            with self._jobs:
                while self._pending is None and not sup.stopping:
                    self._jobs.wait(0.5)
                job, self._pending = self._pending, None
            if job is not None:
                self._restart(job)

    def _covered(self, paths: set[str]) -> bool:
        """True if every changed file is as it was when the last restart's new workers started loading."""
        return bool(paths) and all(
            path in self._go_stamps and filestamp.check(path, self._go_stamps[path]) is not None for path in paths)

    def _restart(self, job: _Job) -> float | None:
        """Replace every worker (see the module docstring); returns ms until the new ones were ready."""
        sup = self.supervisor
        marks = [("change seen", job.seen)]
        saved = [os.stat(path).st_mtime for path in job.paths if os.path.exists(path)]
        if saved:
            marks.append(("file saved", max(saved)))
        with self._lock:
            if sup.stopping:
                return None
            with self._gate:
                if self._covered(job.paths) and not self._paused_since_go:
                    return None  # loaded by the restart that ran meanwhile, and its workers still accept
                sup.broadcast(Pause())  # again: a restart that ran meanwhile started workers that accept
            self._ensure_standbys()
            marks.append(("standbys ready", time.time()))
            new, self._standbys = self._standbys, []
            template = self._standbys_template
            with self._gate:
                self._go_stamps.update((path, stamp) for path in job.paths if (stamp := filestamp.take(path)))
                go = time.time()
                sup.start_loading(new)  # the Reloads of in-place changes (templates) made meanwhile reach them
            marks.append(("go sent", go))
            ready = self._wait_ready(new)
            marks.append(("all new workers ready", time.time()))
            with self._gate:
                superseded = self._superseded()  # edits came in while these loaded: the next restart loads them all
                old = sup.take_over(new, serve=not superseded)
                if old is None:
                    self._drop(new)
                    if not sup.stopping:
                        sup.sink([LogEvent(time.time(), os.getpid(), "warm restart: newer changes came in while the "
                                                                     "new workers loaded; restarting again", "info")])
                    return None
                self._paused_since_go = False
            marks.append(("new workers accept", time.time()))
            sup.sink([WorkerEvent(time.time(), slot.pid, "started", slot.index) for slot in new])
            elapsed = (time.time() - go) * 1000
            if sup.config.livereload:  # the pages these workers stream to reload onto the new ones
                message = self.page_message(tuple(sorted(job.pages)))
                # A failure also goes to the new workers: a browser that reconnects to them keeps showing it.
                for slot in old + new if message.kind == "failed" else old:
                    slot.tell(message)
            for slot in old:
                slot.process.terminate()  # SIGTERM: finish what is in flight, then exit
            self._told_to_end(slot.process for slot in old)
            self.restarts += 1
        threading.Thread(target=self._reap, args=(old, marks), name="devserver-reap", daemon=True).start()
        state = "ready" if ready else "not all ready (see their errors)"
        how = "forked from the warm template" if template is not None else "started"
        total = (time.time() - job.seen) * 1000
        sup.sink([LogEvent(time.time(), os.getpid(),
                           f"warm restart ({'; '.join(job.reasons)}): {len(new)} new worker(s) {how}, {state} in "
                           f"{elapsed:.0f} ms ({total:.0f} ms after the change)", "info")])
        if self.timeline:
            with self._ready:
                worker_marks = self._marks.get(new[0].pid, ())
            self._log_timeline(marks + [(f"worker: {what}", when) for what, when in worker_marks], job.seen)
        if job.report:
            sup.sink([ReloadEvent(time.time(), tuple(sorted(job.paths)), tuple(sorted(job.modules)), total,
                                  "\n".join(job.errors) or None, None)])
        self.prepare()
        return elapsed

    def _superseded(self) -> bool:
        """True if a restart is pending for files that changed after this one's workers started loading."""
        with self._jobs:
            job = self._pending
        return job is not None and not self._covered(job.paths)

    def _drop(self, slots: list[WorkerSlot]) -> None:
        """End loaded workers that will never serve (the event thread reads their pipes to the end)."""
        for slot in slots:
            slot.control.close()  # EOF: a worker waiting for "serve" exits
            if self.supervisor.stopping:
                slot.process.terminate()  # one still loading the app would only end once loaded
        self._told_to_end(slot.process for slot in slots)

        def reap() -> None:
            for slot in slots:
                slot.process.join(2)
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(1)

        threading.Thread(target=reap, name="devserver-reap", daemon=True).start()

    def _log_timeline(self, marks: list[tuple[str, float]], start: float) -> None:
        steps = ", ".join(f"{what} +{(when - start) * 1000:.0f}" for what, when in sorted(marks, key=lambda m: m[1]))
        self.supervisor.sink([LogEvent(time.time(), os.getpid(), f"restart timeline (ms): {steps}", "info")])

    def _wait_ready(self, slots: list[WorkerSlot]) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        with self._ready:
            while True:
                waiting = [s for s in slots if s.pid not in self._ready_pids and s.process.is_alive()]
                if not waiting:
                    return all(s.pid in self._ready_pids for s in slots)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.supervisor.stopping:
                    return False
                self._ready.wait(min(remaining, 0.1))

    def _reap(self, old: list[WorkerSlot], marks: list[tuple[str, float]]) -> None:
        sup = self.supervisor
        deadline = time.monotonic() + sup.config.shutdown_timeout + 2
        for slot in old:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(2)
            sup.sink([WorkerEvent(time.time(), slot.pid, "stopped", slot.index, slot.process.exitcode)])
            slot.control.close()
        if self.timeline:
            self._log_timeline([("old workers drained", time.time())], marks[0][1])


def _end_by(processes: list[Process], deadline: float) -> None:
    """Wait until ``deadline`` for processes told to end, then kill what is left.

    Their exit is waited for on their sentinels, not by join(): the reaping
    threads may be joining them at the same time.
    """
    waiting = {process.sentinel: process for process in processes}
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ended = wait(list(waiting), timeout=remaining)
        waiting = {sentinel: process for sentinel, process in waiting.items() if sentinel not in ended}
    for process in waiting.values():
        process.kill()


__all__ = ["WarmRestarter", "preload", "standby_main"]
