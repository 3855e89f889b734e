"""Hot reload: the supervisor's file watcher.

One thread watches ``--dynamic`` (module reload) and ``--root`` (live browser
reload) with watchfiles' Rust notifier, or by polling (poller.py) where the
system sends no events or refuses a watch.  For each batch of changes:

1. Paths that are noise are dropped: ``__pycache__``, hidden files and
   folders (which covers emacs' ``.#name`` locks), editor swap and backup
   files (``.swp``, ``.swx``, ``name~``, vim's ``4913`` probe), bytecode.
2. Changed ``.py`` files under ``--dynamic``: their stale bytecode is
   deleted first (Python trusts a ``.pyc`` whose recorded source mtime, in
   whole seconds, and size match, so two same-size saves within one second
   would otherwise serve the old code); then the modules to purge are the
   changed ones, their parent packages, and every dynamic module that imports
   any of them, transitively (found with ``ast``, see :class:`ImportGraph`);
   then ``supervisor.reload`` tells the workers.  One :class:`ReloadEvent`
   per batch, with the compile error of a changed file if it has one.
   Other files under ``--dynamic`` (unless also under ``--root``) are
   ignored: an app that writes a data file next to itself must not trigger
   reloads, and browser refreshes, in a loop.
3. Browsers (``--root`` changes, or any module reload) get a page message:
   ``PageChanged("css", url_paths)`` when only stylesheets changed,
   else ``PageChanged("reload", paths)``, sent after the module reload
   so the refreshed page runs the new code.  While a module of the folder
   fails to compile, a batch that changed modules sends
   ``PageChanged("failed", paths, CompileFailure(...))`` instead: open pages
   show the error over themselves and reload on the next batch that leaves
   every module compiling.

The watch is set up synchronously in :meth:`Watcher.start` (the supervisor
starts watchers before it announces that it is listening), so an edit saved
once the server says "listening" is always seen.  That is why the Rust
notifier is used directly: ``watchfiles.watch`` only starts watching when its
generator is first advanced, in the thread.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Protocol

from devserver.ipc.config import Config
from devserver.ipc.control import CompileFailure, ControlMessage, PageChanged
from devserver.ipc.events import Event, LogEvent, ReloadEvent
from devserver.reload.ignored import IGNORED_DIRS, IGNORED_NAME
from devserver.reload.poller import Poller

# The notifier returns a batch once no new change arrived for one step (so
# 1-2 steps after the last change), or at the latest after the debounce; it
# also wakes once a step while idle.  Workers notice a saved module by
# themselves before the next request (dynamic.DynamicModules.cached), so the
# step only paces browser refreshes and the log: 40 ms keeps those prompt and
# an idle supervisor to ~25 wake-ups a second.
STEP_MS = 40
DEBOUNCE_MS = 300
TIMEOUT_MS = 1000  # how long one wait lasts before the loop looks again

# Watches the system refuses: what watchfiles says (notify's MaxFilesWatch is inotify_add_watch's ENOSPC, raised as
# OSError by RustNotify(), or from watch() for a folder made later), the limit, and the fix.  werkzeug loses such
# watches silently; here each is one line, and a refused start falls back to polling.
REFUSALS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("OS file watch limit reached", "No space left on device"), "the inotify watch limit",
     "sudo sysctl fs.inotify.max_user_watches=524288"),
    (("Too many open files",), "the inotify instance limit", "sudo sysctl fs.inotify.max_user_instances=512"),
)


def refusal(exc: BaseException) -> str | None:
    """One line for a watch the system refused (None for any other error)."""
    text = str(exc)
    for needles, limit, fix in REFUSALS:
        if any(needle in text for needle in needles):
            return (f"file watcher: the system refused a watch ({limit}); changes there are not seen until it is "
                    f"raised: {fix} (add it to /etc/sysctl.d/ to keep it)")
    return None

def ignored(path: str, base: str) -> bool:
    """True for paths under ``base`` that never trigger a reload."""
    parts = os.path.relpath(path, base).split(os.sep)
    return any(part in IGNORED_DIRS or IGNORED_NAME.search(part) for part in parts)


def module_name(folder: str, path: str) -> str | None:
    """``<folder>/pkg/mod.py`` → ``"pkg.mod"`` (None if not an importable .py file)."""
    rel = os.path.relpath(path, folder)
    if not rel.endswith(".py") or rel.startswith(os.pardir + os.sep):
        return None
    parts = rel[:-3].split(os.sep)
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def remove_bytecode(source: str) -> list[str]:
    """Delete the cached bytecode of ``source``; returns the files removed."""
    folder, name = os.path.split(source)
    stem = name[:-3]
    candidates = set()
    try:
        candidates.add(importlib.util.cache_from_source(source))
    except (NotImplementedError, ValueError):
        pass
    pycache = os.path.join(folder, "__pycache__")
    try:
        # name.cpython-311.pyc, name.cpython-311.opt-1.pyc, other interpreters' tags
        candidates.update(os.path.join(pycache, entry) for entry in os.listdir(pycache)
                          if entry.endswith(".pyc") and entry.split(".", 1)[0] == stem)
    except OSError:
        pass
    removed = []
    for candidate in candidates:
        try:
            os.unlink(candidate)
            removed.append(candidate)
        except FileNotFoundError:
            pass
        except OSError:
            pass  # unwritable cache: Python will not have written it either
    return removed


def compile_problem(path: str) -> tuple[str, int | None] | None:
    """The syntax error in ``path`` as (text, line), or None (also when it is gone).

    ``compile()`` on the source, not ``py_compile``, which would write bytecode.
    """
    try:
        with open(path, "rb") as f:
            source = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}", None
    try:
        compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = exc.lineno if isinstance(exc, SyntaxError) else None
        return "".join(traceback.format_exception_only(type(exc), exc)), line
    return None


def shown_path(path: str) -> str:
    """``path`` as a browser overlay shows it: relative to the working folder when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


class ImportGraph:
    """Which modules of the dynamic folder import which (static, by ``ast``).

    Every ``import``/``from ... import`` anywhere in a file counts, including
    those inside functions or ``try``: purging too much only costs a
    re-import, purging too little serves a stale reference.  ``import a.b``
    records ``a`` and ``a.b``; ``from a import b`` records ``a`` and ``a.b``
    (``b`` may be a submodule).  Parsed files are cached until they change.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._cache: dict[str, tuple[tuple[int, int, int], frozenset[str]]] = {}

    def modules(self) -> dict[str, str]:
        """Module name → file, for every .py file in the folder."""
        found: dict[str, str] = {}
        for directory, dirs, files in os.walk(self.folder):
            dirs[:] = [d for d in dirs if d not in IGNORED_DIRS and not d.startswith(".")]
            for file in files:
                if file.endswith(".py") and not IGNORED_NAME.search(file):
                    path = os.path.join(directory, file)
                    name = module_name(self.folder, path)
                    if name is not None:
                        found[name] = path
        return found

    def forget(self, paths: Iterable[str]) -> None:
        """Drop cached parses (a same-size save within the same mtime looks unchanged)."""
        for path in paths:
            self._cache.pop(path, None)

    def imports_of(self, name: str, path: str) -> frozenset[str]:
        try:
            st = os.stat(path)
        except OSError:
            return frozenset()
        key = (st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            with open(path, "rb") as f:
                tree = ast.parse(f.read(), path)
        except (OSError, SyntaxError, ValueError):
            names: frozenset[str] = frozenset()
        else:
            is_package = os.path.basename(path) == "__init__.py"
            names = frozenset(_imported_names(tree, name, is_package))
        self._cache[path] = (key, names)
        return names

    def affected(self, changed: Iterable[str]) -> set[str]:
        """``changed``, their parent packages, and all their importers, transitively."""
        seeds: set[str] = set()
        for name in changed:
            parts = name.split(".")
            seeds.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        importers: dict[str, set[str]] = {}
        for module, path in self.modules().items():
            for imported in self.imports_of(module, path):
                importers.setdefault(imported, set()).add(module)
        result = set(seeds)
        todo = list(seeds)
        while todo:
            for importer in importers.get(todo.pop(), ()):
                if importer not in result:
                    result.add(importer)
                    todo.append(importer)
        return result


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names: set[str] = set()

    def add(dotted: str) -> None:
        parts = dotted.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: only meaningful inside a package of the folder
                package = module.split(".") if is_package else module.split(".")[:-1]
                if node.level - 1 > len(package) or (node.level - 1 == len(package) and not base):
                    continue
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
                if not base:
                    continue
            add(base)
            for alias in node.names:
                if alias.name != "*":
                    add(f"{base}.{alias.name}")
    return names


class Notifier(Protocol):
    """What the watcher thread waits on: watchfiles' Rust notifier, or :class:`Poller`."""

    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int,
              stop_event: threading.Event) -> set[tuple[int, str]] | str: ...

    def close(self) -> None: ...


class Supervised(Protocol):
    """What a watcher drives of the supervisor (devserver.supervisor.core.Supervisor, a layer above)."""

    config: Config
    sink: Callable[[list[Event]], None]

    def reload(self, modules: Iterable[str] | None, paths: Iterable[str] = ()) -> int: ...

    def broadcast(self, message: ControlMessage) -> None: ...


class Watcher:
    """The watcher thread; ``start(supervisor)`` and ``stop()`` as the supervisor expects."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notify: Notifier | None = None
        self.supervisor: Supervised | None = None  # set by start()
        self.graph: ImportGraph | None = None
        self.broken: dict[str, tuple[str, int | None]] = {}  # module file -> its syntax error, until fixed

    @property
    def sup(self) -> Supervised:
        """The supervisor, once started."""
        assert self.supervisor is not None, "the watcher is started"
        return self.supervisor

    def folders(self, config: Config) -> list[str]:
        """The trees to watch (and the import graph of ``--dynamic`` when modules reload)."""
        folders = []
        if config.reload:
            folders.append(config.dynamic)
            self.graph = ImportGraph(config.dynamic)
        if config.livereload:
            folders.append(config.root)
        return folders

    def start(self, supervisor: Supervised) -> None:
        """Set up the watch now (so no edit after this call is missed), then watch in a thread."""
        self.supervisor = supervisor
        folders = self.folders(supervisor.config)
        # Watch each tree once: a folder inside another (or the same) is covered by it.
        roots = sorted({f for f in folders if not any(_inside(f, other) for other in folders)})
        if not roots:
            return
        force_polling = os.environ.get("WATCHFILES_FORCE_POLLING", "").lower() not in ("", "0", "false", "no")
        try:
            self._notify = self.notifier(roots, force_polling)
        except OSError as exc:
            line = refusal(exc)
            if line is None or force_polling:
                raise
            self._emit(LogEvent(time.time(), os.getpid(), f"{line}; polling instead meanwhile", "error"))
            self._notify = self.notifier(roots, True)
        self._thread = threading.Thread(target=self._run, name="devserver-watcher", daemon=True)
        self._thread.start()

    @staticmethod
    def notifier(roots: list[str], force_polling: bool) -> Notifier:
        """watchfiles' Rust notifier on ``roots`` (the seam a test makes refuse, as a full inotify table does),
        or, polling, devserver's poller: notify's compares mtimes in whole seconds (poller.py)."""
        if force_polling:
            return Poller(roots)
        from watchfiles._rust_notify import RustNotify  # here: workers import this module, and never watch

        return RustNotify(roots, False, False, 300, True, True)

    def stop(self) -> None:
        """Stop watching; returns within about one step."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._notify is not None:
            self._notify.close()

    def _run(self) -> None:
        notify = self._notify
        assert notify is not None, "started by start()"
        while not self._stop.is_set():
            try:
                raw = notify.watch(DEBOUNCE_MS, STEP_MS, TIMEOUT_MS, self._stop)
            except Exception as exc:  # noqa: BLE001 - the notifier broke: say so, stop watching
                line = refusal(exc)
                if line is not None:  # a folder made since could not be watched; the others still are
                    self._emit(LogEvent(time.time(), os.getpid(), line, "error"))
                    continue
                self._report(traceback.format_exc())
                return
            if raw == "stop":
                return
            if isinstance(raw, str):  # "timeout" or "signal"
                continue
            try:
                self.on_changes({path for _, path in raw})
            except Exception:  # noqa: BLE001 - one bad batch must not end the watching
                self._report(traceback.format_exc())

    def _report(self, text: str) -> None:
        self._emit(LogEvent(time.time(), os.getpid(), f"file watcher error:\n{text}", "error"))

    def _emit(self, event: Event) -> None:
        try:
            self.sup.sink([event])
        except Exception:  # noqa: BLE001 - a broken consumer must not stop reloading
            traceback.print_exc()

    def classify(self, path: str) -> tuple[str, str] | None:
        """What a changed path is: ("module", url), ("page", url) or None (noise).

        A module is an importable .py file under --dynamic; a page is any other
        file under --root (the two folders may overlap, even be the same).  The
        url is the path relative to its folder: that is what browsers are told.
        """
        config = self.sup.config
        dynamic = config.dynamic
        if self.graph is not None and _inside(path, dynamic) and not ignored(path, dynamic) \
                and module_name(dynamic, path) is not None:
            return "module", _url(path, dynamic)
        if config.livereload and _inside(path, config.root) and not ignored(path, config.root):
            return "page", _url(path, config.root)
        return None

    def on_changes(self, paths: set[str]) -> None:
        """Handle one batch of changed paths (absolute)."""
        modules: list[str] = []
        urls: list[str] = []
        for path in sorted(paths):
            found = self.classify(path)
            if found is None:
                continue
            if found[0] == "module":
                modules.append(path)
            urls.append(found[1])
        if modules:
            self.reload_modules(modules)
        if not urls or not self.sup.config.livereload:
            return
        if modules and self.broken:
            self.sup.broadcast(PageChanged("failed", tuple(urls), self.failure()))
            return
        only_css = not modules and all(url.endswith(".css") for url in urls)
        self.sup.broadcast(PageChanged("css" if only_css else "reload", tuple(urls)))

    def failure(self) -> CompileFailure:
        """What browsers show while a module is broken: the most recently broken one."""
        path, (message, line) = next(reversed(self.broken.items()))
        return CompileFailure(shown_path(path), line, message)

    def reload_modules(self, paths: list[str]) -> None:
        """Clear stale bytecode, purge the changed modules and their importers, report once."""
        assert self.graph is not None
        started = time.perf_counter()
        folder = self.graph.folder
        for path in paths:
            remove_bytecode(path)
        self.graph.forget(paths)
        changed = [name for name in (module_name(folder, path) for path in paths) if name is not None]
        modules = sorted(self.graph.affected(changed))
        self.sup.reload(modules, paths)
        errors = self.note_compile_problems(paths)
        duration = (time.perf_counter() - started) * 1000
        self._emit(ReloadEvent(time.time(), tuple(paths), tuple(modules), duration, errors, None))

    def note_compile_problems(self, paths: Iterable[str]) -> str | None:
        """Remember which saved modules do not compile (until a save fixes them); their errors, or None."""
        errors = []
        for path in paths:
            problem = compile_problem(path)
            self.broken.pop(path, None)  # a fresh failure moves to the end: it is the one shown
            if problem is not None:
                self.broken[path] = problem
                errors.append(problem[0])
        return "\n".join(errors) or None


def _inside(path: str, folder: str) -> bool:
    """True if ``path`` lies strictly below ``folder``."""
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _url(path: str, folder: str) -> str:
    return "/" + os.path.relpath(path, folder).replace(os.sep, "/")
