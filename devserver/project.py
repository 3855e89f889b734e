"""A worker's side of serving a project APP (``devserver pkg.module:app``).

:class:`ProjectModules` stands in for :class:`~devserver.dynamic.DynamicModules`
in a worker (same methods) and adds the APP:

* the app is loaded when the worker starts (so a worker is ready when it
  accepts), with the live-reload middleware around it;
* ``purge(names)`` forgets the named project modules, every project module
  below a purged package (a fresh package object lacks the attributes its
  old submodules set), and the app object, so the next request imports
  afresh and calls the factory again; caches third-party libraries keep
  outside the project (Bottle's templates) are cleared too;
* what the app uses is reported to the supervisor's watcher in
  :class:`ProjectUsage` events: the project's module files, the
  third-party modules (the warm template preloads them), the files it
  opens under the project (an audit hook on ``open``: templates, YAML,
  ``.env``... become reload triggers without configuration), and whether
  Django is loaded (it caches URLs, settings and apps in the process: only
  a restart reloads it).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import appspec
from .config import Config
from .dynamic import DynamicModules, ImportFailed, NotFound
from .projectfiles import ProjectFiles

WSGIApp = Callable[..., Iterable[bytes]]
SOURCE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


@dataclass(frozen=True, slots=True)
class Pause:
    """Control message of a warm restart: stop accepting, new workers take the connections."""


@dataclass(frozen=True, slots=True)
class ProjectUsage:
    """What a worker's app uses, newly seen since its last report (consumed by the watcher)."""

    time: float
    worker_pid: int
    module_files: tuple[str, ...] = ()
    third_party: tuple[str, ...] = ()
    opened: tuple[str, ...] = ()  # project files the app read
    written: tuple[str, ...] = ()  # project files the app wrote: never triggers
    frameworks: tuple[str, ...] = ()  # loaded frameworks that matter to the reload strategy
    ready: bool = False  # the app is loaded (or failed to): the worker is taking requests


def _clear_bottle(module: ModuleType) -> None:
    module.TEMPLATES.clear()


# Caches kept by third-party modules (which are never purged) that hold project files.
CACHE_CLEARERS: dict[str, Callable[[ModuleType], None]] = {"bottle": _clear_bottle}
STRATEGY_FRAMEWORKS = ("django",)


def _warm_django_urls(module: ModuleType) -> None:
    module.get_resolver().url_patterns  # noqa: B018 - imports the URLconf and its views now


# Work a framework would do on the first request, done before a (re)started worker says it is ready.
WARMERS: dict[str, Callable[[ModuleType], None]] = {"django.urls": _warm_django_urls}


class UsageReporter:
    """Collects what the app uses and emits it as ProjectUsage events (any thread)."""

    def __init__(self, files: ProjectFiles, emit: Callable[[Any], None]) -> None:
        self.files = files
        self.emit = emit
        self.pid = os.getpid()
        self.modules_seen = 0
        self.module_files: set[str] = set()
        self.third_party: set[str] = set()
        self.opened: set[str] = set()
        self.written: set[str] = set()
        self.frameworks: set[str] = set()
        self._lock = threading.Lock()
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open":
            return
        path, mode, flags = args
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or path.endswith(SOURCE_SUFFIXES):
            return
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
        known = self.written if writes else self.opened
        if path in known:
            return
        absolute = os.path.abspath(path)
        if not self.files.owns(absolute) or absolute in known:
            return
        known.add(absolute)
        known.add(path)
        self.emit(ProjectUsage(time.time(), self.pid, written=(absolute,)) if writes
                  else ProjectUsage(time.time(), self.pid, opened=(absolute,)))

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
                elif name not in self.third_party and not name.startswith(("devserver", "__")):
                    self.third_party.add(name)
                    third.append(name)
            found = {name for name in STRATEGY_FRAMEWORKS if name in sys.modules} - self.frameworks
            self.frameworks |= found
        if files or third or found or ready:
            self.emit(ProjectUsage(time.time(), self.pid, tuple(files), tuple(third), frameworks=tuple(found),
                                   ready=ready))

    def watching(self, app: WSGIApp) -> WSGIApp:
        """``app`` that reports modules it imported while answering (lazy imports, first template...)."""

        def usage_middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            try:
                return app(environ, start_response)
            finally:
                self.scan_modules()

        return usage_middleware


class ProjectModules:
    """The worker's modules when APP is a project app; also serves ``--dynamic`` as before."""

    def __init__(self, config: Config, worker: Any) -> None:
        assert config.app is not None and config.app_dir is not None
        emit = worker.emit_threadsafe
        worker.on_message[Pause] = lambda message: pause(worker)
        self.dynamic = DynamicModules(config.dynamic, follow_saves=config.reload)
        self.files = ProjectFiles(config.app_dir, config.reload_include, config.reload_exclude)
        appspec.put_on_path(config.app_dir)
        self.key = config.app
        self.spec = appspec.parse(config.app, config.app_dir)
        self.livereload = config.livereload
        self.reporter = UsageReporter(self.files, emit)
        self._lock = threading.RLock()
        self._app: WSGIApp | None = None
        try:
            self.app(self.key)
            self._warm()
        except (NotFound, ImportFailed):
            pass  # the first request answers 500 with the reason
        self.reporter.scan_modules(ready=True)

    def _warm(self) -> None:
        for name, warm in WARMERS.items():
            module = sys.modules.get(name)
            if module is not None:
                try:
                    warm(module)
                except Exception:  # noqa: BLE001 - the request that needs it shows the error
                    pass

    # DynamicModules' interface -------------------------------------------------
    def cached(self, name: str, attribute: str | None = "application") -> WSGIApp | None:
        """The loaded app, if any (the watcher's reload message is what purges it)."""
        if name != self.key:
            return self.dynamic.cached(name, attribute or "application")
        return self._app

    def app(self, name: str, attribute: str | None = "application") -> WSGIApp:
        if name != self.key:
            return self.dynamic.app(name, attribute or "application")
        app = self._app
        if app is not None:
            return app
        with self._lock:
            if self._app is None:
                self._app = self._load()
            return self._app

    def _load(self) -> WSGIApp:
        try:
            target = appspec.load(self.spec)
        except appspec.AppLoadError as exc:
            if exc.kind == "failed":
                raise ImportFailed(exc.module or self.spec.module, exc.traceback or str(exc)) from None
            raise NotFound(str(exc)) from None
        finally:
            self.reporter.scan_modules()
        if self.livereload:
            from .inject import with_livereload

            target = with_livereload(target)
        return self.reporter.watching(target)

    def changed_within(self, name: str, seconds: float) -> bool:
        """True if a project module file changed less than ``seconds`` ago (a save may be landing)."""
        if name != self.key:
            return self.dynamic.changed_within(name, seconds)
        now = time.time()
        for file in list(self.reporter.module_files):
            try:
                if now - os.stat(file).st_mtime < seconds:
                    return True
            except OSError:
                continue
        return False

    def project_modules(self) -> dict[str, ModuleType]:
        return {name: module for name, module in list(sys.modules.items())
                if module is not None and (file := getattr(module, "__file__", None)) and self.files.owns(file)}

    def purge(self, names: Any) -> list[str]:
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


def modules_for(config: Config, worker: Any) -> DynamicModules | ProjectModules:
    """The worker's module loader: the project's when APP is a project app."""
    if config.app_dir is None:
        return DynamicModules(config.dynamic, follow_saves=config.reload)
    return ProjectModules(config, worker)


def pause(worker: Any) -> None:
    """Stop accepting connections: a warm restart's new workers take them from the supervisor's socket.

    Requests in flight, open keep-alive connections and live-reload streams
    carry on until the SIGTERM that follows once the new workers are ready.
    """
    # Only the reader goes, not the server: asyncio's Server.close() drops (resets) connections that
    # were accepted in the same loop iteration but not yet given a transport.
    worker.loop.remove_reader(worker.sock.fileno())


def app_key(config: Config) -> tuple[str | None, str | None]:
    """(name, attribute) the worker asks its loader for: a project APP is named whole."""
    if config.app is None:
        return None, None
    if config.app_dir is not None:
        return config.app, None
    name, attribute = config.app.split(":", 1)
    return name, attribute
