"""A worker's side of serving a project APP (``devserver pkg.module:app``).

:class:`ProjectModules` stands in for :class:`~devserver.apps.dynamic.DynamicModules`
in a worker (same methods) and adds the APP:

* the app is loaded when the worker starts (so a worker is ready when it
  accepts), with the live-reload middleware around it;
* ``purge(names)`` forgets the named project modules, every project module
  below a purged package (a fresh package object lacks the attributes its
  old submodules set), and the app object, so the next request imports
  afresh and calls the factory again; caches third-party libraries keep
  outside the project (Bottle's templates) are cleared too;
* before each request, ``cached()`` compares the project files the app was
  built from with the disk (:class:`Freshness`: a stat per file): a change
  is applied before answering, so the request right after a save runs the
  new code even before the watcher's message arrives (which then finds
  nothing left to do).  A change that needs a warm restart (Django, a
  settings module) cannot be applied here: the worker tells the supervisor
  at once (``ProjectUsage.stale``), which starts the restart without
  waiting for the watcher;
* what the app uses is reported to the supervisor's watcher in
  :class:`ProjectUsage` events: the project's module files, the
  third-party modules (the warm template preloads them), the files it
  opens under the project (an audit hook on ``open``: templates, YAML,
  ``.env``... become reload triggers without configuration), and whether
  Django is loaded (it caches URLs, settings and apps in the process: only
  a restart reloads it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import FrameType, ModuleType
from typing import cast

from devserver.apps import appspec, devmode
from devserver.apps.dynamic import PYC_RACY_NS, DynamicModules, ImportFailed, NotFound, ServedApp, saving
from devserver.apps.host import WorkerHost
from devserver.apps.ownmodules import OwnModules
from devserver.apps.projectfiles import ProjectFiles
from devserver.apps.protocol import is_asgi
from devserver.apps.templatecache import TemplateCaches
from devserver.debug import tracebacks
from devserver.handlers.asgi import ASGIApp, ASGIApplication
from devserver.handlers.wsgi import WSGIApp
from devserver.ipc.channels import ControlReceiver
from devserver.ipc.config import Config
from devserver.ipc.control import ControlMessage, Pause, Reload, Serve
from devserver.ipc.events import ProjectUsage
from devserver.ipc.reports import ErrorReport
from devserver.kit import filestamp, interpreter
from devserver.reload.rules import Change, is_asset, restart_reason
from devserver.reload.watcher import ImportGraph, module_name, remove_bytecode

SOURCE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


# Steps of this process's start, (what, time.time()): a standby adds its own (warm.py); sent with "ready".
START_MARKS: list[tuple[str, float]] = []
# Set in a warm restart's new worker (warm.py): once loaded it waits for "serve" before accepting, so that
# a restart overtaken by newer edits while it loaded never serves its (already old) code.
TAKEOVER_WAIT = False


def _emptied(file: str) -> bool:
    """True if ``file`` is empty now (an editor that truncates, then writes, may be between the two)."""
    try:
        return os.stat(file).st_size == 0
    except OSError:
        return False


class ProjectGraph(ImportGraph):
    """The import graph over the project modules the workers reported."""

    def __init__(self, folder: str, files: set[str]) -> None:
        super().__init__(folder)
        self.files = files

    def modules(self) -> dict[str, str]:
        found = {}
        for path in list(self.files):
            name = module_name(self.folder, path)
            if name is not None:
                found[name] = path
        return found


class Freshness:
    """Stamps of the project files the app was built from: which changed on disk since (a stat each)."""

    def __init__(self) -> None:
        self.stamps: dict[str, filestamp.Stamp] = {}
        self.written: set[str] = set()  # files the app writes: not a reason to rebuild it (nor for the watcher)

    def never(self, file: str) -> None:
        self.written.add(file)
        self.stamps.pop(file, None)

    def stamp_one(self, file: str) -> None:
        self.stamp((file,))

    def stamp(self, files: Iterable[str]) -> None:
        """Stamp ``files`` not stamped yet (before they are read, so a save meanwhile shows as a change)."""
        for file in files:
            if file not in self.stamps and file not in self.written:
                stamp = filestamp.take(file)
                if stamp is not None:
                    self.stamps[file] = stamp

    def changed(self) -> list[str]:
        found = []
        for file, stamp in list(self.stamps.items()):
            now = filestamp.check(file, stamp)
            if now is None:
                if stamp.size and _emptied(file):
                    continue  # truncated by a save still being written: the write is what to load
                found.append(file)
            elif now is not stamp:
                self.stamps[file] = now  # calmer: no more hashing
        return found

    def forget(self, files: Iterable[str]) -> None:
        for file in files:
            self.stamps.pop(file, None)

    def current(self, files: Iterable[str]) -> bool:
        """True if every file is stamped and unchanged: what is loaded was read from them as they are."""
        stamps = self.stamps
        return all(file in stamps and filestamp.check(file, stamps[file]) is not None for file in files)


def _clear_bottle(module: ModuleType) -> None:
    module.TEMPLATES.clear()


# Caches kept by third-party modules (which are never purged) that hold project files.
CACHE_CLEARERS: dict[str, Callable[[ModuleType], None]] = {"bottle": _clear_bottle}
STRATEGY_FRAMEWORKS = ("django",)


def _warm_django_urls(module: ModuleType) -> None:
    if devmode.django_set_up():  # not a library that imported django.urls into an app of another framework
        module.get_resolver().url_patterns  # noqa: B018 - imports the URLconf and its views now


# Work a framework would do on the first request, done before a (re)started worker says it is ready.
WARMERS: dict[str, Callable[[ModuleType], None]] = {"django.urls": _warm_django_urls}


class UsageReporter:
    """Collects what the app uses and emits it as ProjectUsage events (any thread)."""

    def __init__(self, files: ProjectFiles, emit: Callable[[ProjectUsage], None],
                 on_file: Callable[[str], None] = lambda path: None,
                 on_written: Callable[[str], None] = lambda path: None,
                 on_source: Callable[[str], None] = lambda path: None) -> None:
        self.files = files
        self.emit = emit
        self.on_file = on_file  # a project file the app reads: called before an opened file is read
        self.on_written = on_written  # a project file the app writes: its changes are the app's own
        self.on_source = on_source  # a .py or .pyc about to be read by an import
        self.pid = os.getpid()
        self.modules_seen = 0
        self.module_files: set[str] = set()
        self.third_party: set[str] = set()
        self.opened: set[str] = set()  # absolute paths of the project files the app read
        self._read: dict[str, str] = {}  # a path as the app opened it -> its absolute path ("": not the project's)
        self.written: set[str] = set()
        self.templates = TemplateCaches()
        self.reported_templates: set[str] = set()
        self.frameworks: set[str] = set()
        self._lock = threading.Lock()
        self._inside = threading.local()
        interpreter.on_open(self._audit)

    def _audit(self, args: tuple[object, ...]) -> None:
        if getattr(self._inside, "hook", False):
            return  # the hook's own reads (a stamp hashing a file) are not the app's
        self._inside.hook = True
        try:
            self._opened(interpreter.stack_frame(1), *args)
        finally:
            self._inside.hook = False

    def _opened(self, frame: FrameType, path: object, mode: object, flags: object) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and bool(flags & WRITE_FLAGS))
        if path.endswith(SOURCE_SUFFIXES):
            if path.endswith((".py", ".pyc")) and not writes:
                self.on_source(path)  # an import reading a module (or its bytecode)
            return
        if writes:  # before assets: an upload the app writes must not refresh the browsers' images either
            if path in self.written:
                return
            target = os.path.abspath(path)
            if not self.files.owns(target) or target in self.written:
                return
            self.written.update((path, target))
            self.on_written(target)
            self.emit(ProjectUsage(time.time(), self.pid, written=(target,)))
            return
        if is_asset(path):
            return  # served to browsers as it is (Flask's static/): its save never rebuilds the app
        absolute = self._read.get(path)
        if absolute is None:
            absolute = os.path.abspath(path)
            if not self.files.owns(absolute) or self.files.excluded(absolute):
                absolute = ""
            if len(self._read) > 100_000:  # an app reading ever new files (uploads) stays bounded
                self._read.clear()
            self._read[path] = absolute
        if not absolute:
            return  # not the project's, or left out by --reload-exclude
        # Every read, not only the first: a file read again after a rebuild (a new Jinja environment,
        # templates loaded afresh) is stamped again, and the engine that read it is the new one.
        self.on_file(absolute)
        template = self.templates.opened(absolute, frame)
        if absolute not in self.opened or (template and absolute not in self.reported_templates):
            self.opened.add(absolute)
            if template:
                self.reported_templates.add(absolute)
            self.emit(ProjectUsage(time.time(), self.pid, opened=(absolute,), templates=(absolute,) if template else ()))

    def scan_modules(self, ready: bool = False) -> None:
        """Report modules imported since the last scan (cheap when none were)."""
        if len(sys.modules) == self.modules_seen and not ready:
            return
        with self._lock:
            self.modules_seen = len(sys.modules)
            files, third = [], []
            for name, module in list(sys.modules.items()):
                file = getattr(module, "__file__", None)
                if not file:
                    continue
                if self.files.owns(file):
                    if file not in self.module_files:
                        self.module_files.add(file)
                        files.append(file)
                        if not self.files.excluded(file):
                            self.on_file(file)
                elif name not in self.third_party and not name.startswith(("devserver", "__")):
                    self.third_party.add(name)
                    third.append(name)
            found = {name for name in STRATEGY_FRAMEWORKS if name in sys.modules} - self.frameworks
            self.frameworks |= found
        if files or third or found or ready:
            self.emit(ProjectUsage(time.time(), self.pid, tuple(files), tuple(third), frameworks=tuple(found),
                                   ready=ready, marks=tuple(START_MARKS) if ready else ()))

    def known_files(self) -> list[str]:
        with self._lock:
            return list(self.module_files)

    def watching(self, app: WSGIApp) -> WSGIApp:
        """``app`` that reports modules it imported while answering (lazy imports, first template...)."""

        def usage_middleware(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
            try:
                return app(environ, start_response)
            finally:
                self.scan_modules()

        return usage_middleware


class ProjectModules:
    """The worker's modules when APP is a project app; also serves ``--dynamic`` as before."""

    def __init__(self, config: Config, worker: WorkerHost) -> None:
        assert config.app is not None and config.app_dir is not None
        START_MARKS.append(("worker set up", time.time()))
        emit = worker.emit_threadsafe
        self.worker = worker
        worker.on_message[Pause] = lambda message: pause(worker)
        worker.on_message[Reload] = self._on_reload
        self.dynamic = DynamicModules(config.dynamic, follow_saves=config.reload)
        self.files = ProjectFiles(config.app_dir, config.reload_include, config.reload_exclude)
        self._own = OwnModules(self.files.owns)  # which of sys.modules are the project's (asked at every purge)
        appspec.put_on_path(config.app_dir)
        self.key = config.app
        self.spec = appspec.parse(config.app, config.app_dir)
        self.livereload = config.livereload
        self.follow_saves = config.reload
        self.strategy = config.reload_strategy
        self.fresh = Freshness()
        self.graph: ProjectGraph | None = None  # built at the first change seen before a request
        self.reporter = UsageReporter(self.files, emit, self.fresh.stamp_one, self.fresh.never, self._source_read) \
            if config.reload else UsageReporter(self.files, emit)
        self._lock = threading.RLock()
        self._app: ServedApp | None = None
        START_MARKS.append(("loader ready", time.time()))
        try:
            self.app(self.key)
            START_MARKS.append(("app loaded", time.time()))
        except (NotFound, ImportFailed):
            pass  # the first request answers 500 with the reason
        self.reporter.scan_modules(ready=True)
        if TAKEOVER_WAIT:
            worker.flush_events()  # "ready" now, not with the next batch
            for message in await_takeover(worker.control):
                worker.on_control(message)  # a Reload of a template saved while this worker loaded, say

    def _warm(self) -> None:
        """The framework's first-request work, now; what fails there is the app's import error.

        A Django URLconf that does not import (a view with a syntax error)
        would fail every request, each one slowly (Django retries the import
        while building each of its error pages, one per middleware): the
        worker answers the import error page instead, importing it again at
        each request until the save that fixes it.
        """
        for name, warm in WARMERS.items():
            module = sys.modules.get(name)
            if module is not None:
                try:
                    warm(module)
                except Exception as exc:  # noqa: BLE001 - whatever the project raises is its import error
                    report = tracebacks.import_report(exc)
                    raise ImportFailed(self._failed_module(report), traceback.format_exc(), report) from None

    def _failed_module(self, report: ErrorReport | None) -> str:
        """The project module whose file the import error came from (the innermost one), else the APP's."""
        for frame in reversed(report.frames if report is not None else ()):
            name = module_name(self.files.folder, frame.filename) if self.files.owns(frame.filename) else None
            if name is not None:
                return name
        return self.spec.module

    # DynamicModules' interface -------------------------------------------------
    def cached(self, name: str, attribute: str | None = "application") -> ServedApp | None:
        """The loaded app, unless a project file it was built from changed on disk (then None: rebuild it)."""
        if name != self.key:
            return self.dynamic.cached(name, attribute or "application")
        app = self._app
        if app is not None and self.follow_saves:
            changed = self.fresh.changed()
            if changed and self._apply(changed):
                return None
        return app

    def _apply(self, changed: list[str]) -> bool:
        """Apply ``changed`` as the watcher would: clear template caches (False: the app stays), purge what the
        rest affects (True: rebuild the app), or ask for a warm restart (False: this request gets the old app)."""
        folder = self.files.folder
        self.fresh.forget(changed)  # seen: stamped afresh when read again
        templates = self.reporter.templates.templates(changed)
        only_templates = len(templates) == len(changed)
        names = tuple(name for name in (module_name(folder, p) for p in changed if p.endswith(".py")) if name)
        frameworks = frozenset(name for name in STRATEGY_FRAMEWORKS if name in sys.modules)
        if restart_reason(Change(self.strategy, frameworks, names, False, only_templates)) is not None:
            # This request is answered by the code loaded (it was accepted before anyone knew); later
            # connections wait in the socket's queue for the restarted workers, which the notice starts
            # now (sent at once, not with the next batch of events).
            pause(self.worker)
            self.reporter.emit(ProjectUsage(time.time(), self.reporter.pid, stale=tuple(changed)))
            self.worker.flush_events()
            return False
        if only_templates:
            self.reporter.templates.clear(templates)
            return False
        for path in changed:
            if path.endswith(".py"):
                remove_bytecode(path)  # a same-size save in the same second would pass Python's .pyc check
        if self.graph is None:
            self.graph = ProjectGraph(folder, self.reporter.module_files)
        self.graph.forget(changed)
        seeds = list(names) + ([self.spec.module] if len(names) < len(changed) - len(templates) else [])
        self.purge(sorted(self.graph.affected(seeds)))
        return True

    def _on_reload(self, message: Reload) -> None:
        """The watcher's reload: nothing to do when the request path already applied it (the files are as read)."""
        if message.modules is None:
            self.purge(self.loaded())
        elif not (message.paths and self.follow_saves and self.fresh.current(message.paths)):
            for path in message.paths:
                if path.endswith(".py") and self.files.owns(path):
                    remove_bytecode(path)
            self.fresh.forget(message.paths)  # stamped afresh when read again
            self.reporter.templates.clear(message.paths)
            if message.modules:
                had_app = self._app is not None
                self.purge(message.modules)
                if had_app:
                    # Rebuilt now rather than by the next request: that request is not slowed down, and
                    # the bytecode just removed is written again even if no request comes.
                    rebuilt = self.worker.pool.submit(self._rebuild)
                    rebuilt.add_done_callback(lambda _: self.worker.app_loaded())  # an ASGI app's startup, now
        self.worker.applied_generation = max(self.worker.applied_generation, message.generation)

    def _rebuild(self) -> None:
        try:
            self.app(self.key)
        except (NotFound, ImportFailed):
            pass  # the next request answers with the reason

    def app(self, name: str, attribute: str | None = "application") -> ServedApp:
        if name != self.key:
            return self.dynamic.app(name, attribute or "application")
        app = self._app
        if app is not None:
            return app
        with self._lock:
            if self._app is None:
                self._app = self._load()
            return self._app

    def _load(self) -> ServedApp:
        if self.follow_saves:
            self.fresh.stamp(self._watched(self.reporter.known_files()))  # before the import reads them
        try:
            target = devmode.develop(appspec.load(self.spec))
            self._warm()
        except appspec.AppLoadError as exc:
            # A module imported without the app in it (caught half written, say) must not stay cached:
            # the next attempt imports it again.
            sys.modules.pop(self.spec.module, None)
            if exc.kind == "failed":
                raise ImportFailed(self._failed_module(exc.report), exc.traceback or str(exc), exc.report) from None
            raise NotFound(str(exc)) from None
        finally:
            self.reporter.scan_modules()
            if self.follow_saves:
                self.fresh.stamp(self._watched(self.reporter.known_files()))  # the modules imported for the first time
        if is_asgi(target):
            return self._asgi(target)
        wsgi_app = cast(WSGIApp, target)  # anything else callable is taken for WSGI
        if self.livereload:
            from devserver.handlers.inject import with_livereload

            wsgi_app = with_livereload(wsgi_app)
        return self.reporter.watching(wsgi_app)

    def _asgi(self, target: ASGIApp) -> ASGIApplication:
        """An ASGI app as the worker serves it (on its loop): live reload around it, the module scan after each call."""
        if self.livereload:
            from devserver.handlers.asgiinject import with_livereload_asgi

            target = with_livereload_asgi(target)
        return ASGIApplication(target, self.key, after=self.reporter.scan_modules)

    def _source_read(self, path: str) -> None:
        """An import is about to read ``path``: stamp the module's source first, and keep a doubtful .pyc out.

        Stamped before the read, a save that lands during the import shows
        as a change at the next request.  A ``.pyc`` records its source's
        mtime in whole seconds (and its size): one written in the same
        second as a same-size save (by the command line's check of APP, by
        another worker) would pass Python's check; while the source is that
        young, the ``.pyc`` is removed and the source compiled.
        """
        bytecode = path.endswith(".pyc")
        if bytecode:
            if "__pycache__" not in path:
                return
            try:
                source = importlib.util.source_from_cache(path)
            except ValueError:
                return
        else:
            source = path
        if not self.files.owns(source) or self.files.excluded(source):
            return
        self.fresh.stamp((source,))
        stamp = self.fresh.stamps.get(source)
        if bytecode and stamp is not None and time.time_ns() - stamp.mtime_ns < PYC_RACY_NS:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _watched(self, files: list[str]) -> list[str]:
        """``files`` but those --reload-exclude leaves out (the watcher ignores their changes too)."""
        return [file for file in files if not self.files.excluded(file)]

    def changed_within(self, name: str, seconds: float) -> bool:
        """True if a project module file changed less than ``seconds`` ago (a save may be landing)."""
        if name != self.key:
            return self.dynamic.changed_within(name, seconds)
        now = time.time()
        for file in self.reporter.known_files():
            try:
                st = os.stat(file)
            except OSError:
                continue
            if saving(st, seconds, now):
                return True
        return False

    def project_modules(self) -> dict[str, ModuleType]:
        return dict(self._own.items())

    def purge(self, names: Iterable[str]) -> list[str]:
        """Forget the named modules (project and dynamic) and the app; returns those purged."""
        names = list(names)
        if self.key in names:  # the worker's retry after a failed import: start the app afresh
            names = [*names, self.spec.module]
        with self._lock:
            loaded = self.project_modules()
            targets = {name for name in names if name in loaded}
            for package in list(targets):
                targets.update(name for name in loaded if name.startswith(package + "."))
            for name in targets:
                sys.modules.pop(name, None)
            self._app = None
            for module_name, clear in CACHE_CLEARERS.items():
                module = sys.modules.get(module_name)
                if module is not None:
                    clear(module)
        return sorted(targets) + self.dynamic.purge(names)

    def loaded(self) -> list[str]:
        return [*self.project_modules(), *self.dynamic.loaded()]


def await_takeover(control: ControlReceiver) -> list[ControlMessage]:
    """Block until the supervisor says "serve"; end the process if it lets this worker go instead.

    Returns the messages that came before "serve", to be applied in order
    before serving: a Reload among them is one this worker's generation
    counts on (``Worker.catch_up`` would wait for it in vain).
    """
    early: list[ControlMessage] = []
    while True:
        try:
            message = control.recv()
        except (EOFError, OSError):
            raise SystemExit(0) from None
        if isinstance(message, Serve):
            return early
        early.append(message)


def pause(worker: WorkerHost) -> None:
    """Stop accepting connections: a warm restart's new workers take them from the supervisor's socket.

    Requests in flight and live-reload streams carry on until the SIGTERM
    that follows once the new workers are ready; idle keep-alive connections
    are no longer read, and go to the new workers then (``Worker.retire``).
    """
    worker.retire()
