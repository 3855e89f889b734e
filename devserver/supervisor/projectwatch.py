"""Hot reload of a project APP: what to watch, and which strategy a change gets.

The watched tree is the project folder (``--app-dir``).  A change there
matters when it is

* a module the app imported (reported by the workers: ``ProjectUsage``),
* a file the app read at run time (templates, YAML, ``.env``: the workers'
  audit hook on ``open`` reports them), or one matching ``--reload-include``,
* an asset (a stylesheet, script, image or font: :func:`is_asset`),

and not one matching ``--reload-exclude``, nor one the app wrote itself (an
upload, an SQLite database, a log: the workers' audit hook reports them, and
the usual names of databases and logs are never one), nor in a virtualenv,
``site-packages`` or a tool's folder (:mod:`devserver.reload.ignored`).  An
edited ``.env`` file (``--env-file``) is applied again and restarts the
workers.  Each batch of changes is applied in one of these ways:

* an asset only tells the browsers (stylesheets swapped, images fetched
  again): no worker rebuilds or restarts;
* templates only (files a template engine read, :mod:`devserver.apps.templatecache`):
  every worker clears that engine's caches, whatever the framework (Django
  too, as runserver does); the app is not rebuilt;
* in place: the changed modules, their importers and the app's own module
  are purged in every worker; the next request imports them again and calls
  the factory again;
* warm restart (:mod:`devserver.supervisor.warm`) when in place cannot be correct; the
  first matching row of :data:`RESTART_REASONS` says why, in the log.

Browsers are told once the new code answers (after the message in each
worker's pipe, or when the restarted workers are ready): app pages reload
(``PageChanged("app")``), or, while a changed module does not compile, show
the error over themselves (``PageChanged("failed")``) until a save fixes it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from devserver.apps import appspec
from devserver.apps.project import ProjectGraph
from devserver.apps.projectfiles import ProjectFiles
from devserver.ipc.config import Config
from devserver.ipc.control import PageChanged
from devserver.ipc.events import Event, LogEvent, ProjectUsage, ReloadEvent
from devserver.reload.rules import Change, is_asset, restart_reason
from devserver.reload.watcher import (
    ImportGraph,
    Supervised,
    Watcher,
    module_name,
    remove_bytecode,
    shown_path,
)
from devserver.supervisor.core import Supervisor
from devserver.supervisor.warm import WarmRestarter


class ProjectWatcher(Watcher):
    """The watcher of a project APP (and of --root and --dynamic, as :class:`Watcher`)."""

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__()
        config = supervisor.config
        assert config.app is not None and config.app_dir is not None, "a project APP"
        self.files = ProjectFiles(config.app_dir, config.reload_include, config.reload_exclude)
        self.spec = appspec.parse(config.app, config.app_dir)
        self.module_files: set[str] = set()
        self.opened: set[str] = set()
        self.templates: set[str] = set()  # files a template engine read: cleared in place
        self.written: set[str] = set()
        self.frameworks: set[str] = set()
        self.import_failed = False
        self.project_graph = ProjectGraph(self.files.folder, self.module_files)
        self.restarter = WarmRestarter(supervisor)
        self.restarter.page_message = self.page_message  # what open pages hear once restarted workers answer
        self._usage_lock = threading.Lock()
        self._changes_lock = threading.Lock()
        supervisor.sink = self._filtered(supervisor.sink)
        self._reload_all = supervisor.reload_all
        supervisor.reload_all = self.reload_all  # the dashboard's R: a restart where in place cannot be right

    # what the workers report -----------------------------------------------------
    def _filtered(self, sink: Callable[[list[Event]], None]) -> Callable[[list[Event]], None]:
        """The supervisor's sink without ProjectUsage events, which are ours."""

        def filtered(batch: list[Event]) -> None:
            rest: list[Event] = []
            for event in batch:
                if isinstance(event, ProjectUsage):
                    self.on_usage(event)
                    continue
                if isinstance(event, ReloadEvent) and event.worker_pid is not None and event.error \
                        and not _is_syntax_error(event.error):
                    self.import_failed = True
                rest.append(event)
            if rest:
                sink(rest)

        return filtered

    def on_usage(self, usage: ProjectUsage) -> None:
        with self._usage_lock:
            self.module_files.update(usage.module_files)
            self.opened.update(usage.opened)
            self.templates.update(usage.templates)
            self.written.update(usage.written)
            self.frameworks.update(usage.frameworks)
        self.restarter.add_preload(usage.third_party)
        if "django" in usage.frameworks:  # its setup goes in the warm template: a restart only imports the URLs
            self.restarter.setup_module = self.spec.module
        if usage.ready:
            self.restarter.note_ready(usage.worker_pid, usage.marks)
            if self._warm_wanted() and self.restarter.restarts == 0:
                self.restarter.prepare()
        if usage.stale:  # a worker found these changed before a request: it stopped accepting, restart now
            with self._changes_lock:
                if not any(self.project_change(path) for path in usage.stale):  # not ours to reload: still restart
                    self.restarter.request("files the app read changed", (), usage.stale,
                                           from_worker=usage.worker_pid)
                else:
                    self._on_changes(set(usage.stale), usage.worker_pid)

    def start(self, supervisor: Supervised) -> None:
        super().start(supervisor)
        if any(name.partition(".")[0] == "django" for name in supervisor.config.preload):
            # Known from the command line's check of APP: the warm template (with django.setup()) starts
            # now, alongside the first workers, so that it is ready for the first edit.
            with self._usage_lock:
                self.frameworks.add("django")
            self.restarter.setup_module = self.spec.module
        if self._warm_wanted():
            self.restarter.prepare()

    def _warm_wanted(self) -> bool:
        return self.supervisor is not None and (
            "django" in self.frameworks or self.supervisor.config.reload_strategy == "restart")

    # watching -----------------------------------------------------------------------
    def folders(self, config: Config) -> list[str]:
        """The project folder, and ``--dynamic`` and ``--root`` where a project has them."""
        folders = [self.files.folder] if config.reload else []
        if config.reload and os.path.isdir(config.dynamic):
            folders.append(config.dynamic)
            self.graph = ImportGraph(config.dynamic)
        if config.livereload and os.path.isdir(config.root):
            folders.append(config.root)
        return folders

    def stop(self) -> None:
        super().stop()
        self.restarter.stop()

    def project_change(self, path: str) -> str | None:
        """"code", "template", "data", "asset" or None (not a change the app or its pages can see)."""
        config = self.sup.config
        if not self.files.watched(path) or self.files.excluded(path):
            return None
        with self._usage_lock:
            if path in self.written and not self.files.included(path):
                return None  # the app's own output (an upload, a database, a log): never a reload
        if is_asset(path):
            # Under --root or --dynamic the base watcher tells the pages, with the path as served there.
            return "asset" if config.livereload and self.classify(path) is None else None
        if not config.reload:
            return None
        with self._usage_lock:
            if path in self.templates and path not in self.written and not self.files.included(path):
                return "template"
            if path.endswith(".py"):
                used = path in self.module_files or self.import_failed or not self.module_files \
                    or path in self.restarter.template_files()  # Django's models, settings, admin...
                return "code" if used or self.files.included(path) else None
            if (path in self.opened and path not in self.written) or self.files.included(path):
                return "data"
        return None

    def on_changes(self, paths: set[str]) -> None:
        with self._changes_lock:  # the watcher thread, and the event thread for a worker's notice
            self._on_changes(paths)

    def _on_changes(self, paths: set[str], from_worker: int | None = None) -> None:
        edited = paths.intersection(self.sup.config.env_files)
        if edited:
            self.env_files_changed(sorted(edited))
            paths = paths - edited
        kinds: dict[str | None, list[str]] = {"code": [], "template": [], "data": [], "asset": [], None: []}
        for path in sorted(paths):
            kinds[self.project_change(path)].append(path)
        if kinds["code"] or kinds["data"] or kinds["template"]:
            self.reload_project(kinds["code"], kinds["data"], from_worker, tuple(kinds["template"]))
        if kinds["asset"]:
            urls = tuple("/" + self.files.relative(p) for p in kinds["asset"])
            only_css = all(url.endswith(".css") for url in urls)
            self.sup.broadcast(PageChanged("css" if only_css else "reload", urls))
        if kinds[None]:
            super().on_changes(set(kinds[None]))

    def env_files_changed(self, files: list[str]) -> None:
        """A .env file was edited: apply the files again, then restart the workers (apps read them at import)."""
        from devserver.settings import envfile

        names = ", ".join(shown_path(path) for path in files)
        try:
            envfile.apply(self.sup.config.env_files)
        except envfile.ConfigError as exc:
            self._emit(LogEvent(time.time(), os.getpid(), f"{exc}: the workers keep the old values", "error"))
            return
        self._emit(LogEvent(time.time(), os.getpid(), f"{names} changed: restarting workers", "info"))
        self.restarter.environment_changed()
        self.restarter.request(f"{names} changed", (), files)

    def reload_all(self) -> None:
        """Reload everything now: in place, or a warm restart (in a thread: the caller is the UI)."""
        with self._usage_lock:
            change = Change(self.sup.config.reload_strategy, frozenset(self.frameworks), (), self.import_failed)
        reason = restart_reason(change)
        if reason is None:
            self._reload_all()
            return
        self.restarter.request(f"reload of everything asked; {reason}", report=False)

    def reload_project(self, code: list[str], data: list[str], from_worker: int | None = None,
                       templates: tuple[str, ...] = ()) -> None:
        started = time.perf_counter()
        self.project_graph.forget(code)
        changed = tuple(name for name in (module_name(self.files.folder, p) for p in code) if name is not None)
        paths = (*code, *data, *templates)
        urls = tuple("/" + self.files.relative(p) for p in paths)
        errors = self.note_compile_problems(code)
        with self._usage_lock:
            change = Change(self.sup.config.reload_strategy, frozenset(self.frameworks), changed,
                            self.import_failed, only_templates=not (code or data))
        reason = restart_reason(change)
        if reason is None:
            seeds = list(changed) + ([self.spec.module] if data else [])
            modules = sorted(self.project_graph.affected(seeds)) if seeds else []
            self.sup.reload(modules, paths)
            if modules:
                what = ", ".join(changed) or ", ".join(urls)
                line = f"reload in place ({what} changed): modules purged, the app is rebuilt on the next request"
            else:
                line = f"reload in place ({', '.join(urls)} changed): template caches cleared, the app stays"
            self._emit(LogEvent(time.time(), os.getpid(), line, "info"))
            if self.sup.config.livereload:
                self.sup.broadcast(self.page_message(urls))
            duration = (time.perf_counter() - started) * 1000
            self._emit(ReloadEvent(time.time(), paths, tuple(modules), duration, errors, None))
        else:
            for path in code:  # the new workers import afresh: no .pyc of a same-second same-size save may pass
                remove_bytecode(path)
            self.import_failed = False
            if self.broken and self.sup.config.livereload:  # shown now: the restart cannot fix it
                self.sup.broadcast(self.page_message(urls))
            # Reported (ReloadEvent) by the restarter once the new workers answer.
            self.restarter.request(reason, urls, paths, changed, errors, from_worker=from_worker)

    def page_message(self, urls: tuple[str, ...]) -> PageChanged:
        """What open pages are told once the app answers with the changes: reload, or show what does not compile."""
        if self.broken:
            return PageChanged("failed", urls, self.failure())
        return PageChanged("app", urls)


def _is_syntax_error(text: str) -> bool:
    """A traceback ending in a compile error: nothing of the module ran, so no state is half-made."""
    last = text.strip().rsplit("\n", 1)[-1]
    return last.startswith(("SyntaxError", "IndentationError", "TabError"))
