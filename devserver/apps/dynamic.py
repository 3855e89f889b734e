"""Finding and importing the apps in the ``--dynamic`` folder.

Only a module whose file lies inside that folder is ever imported: the URL
``/name.py`` maps to ``<dynamic>/name.py`` and to nothing else, so
``/os.py`` or ``/../x.py`` can never reach a module outside it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import cast

from devserver.apps import devmode
from devserver.apps.ownmodules import OwnModules
from devserver.apps.protocol import is_asgi
from devserver.debug.tracebacks import import_report
from devserver.handlers.asgi import ASGIApplication
from devserver.handlers.wsgi import WSGIApp
from devserver.ipc.reports import ErrorReport
from devserver.kit import filestamp

ServedApp = WSGIApp | ASGIApplication  # what a worker serves: a WSGI callable, or an ASGI app run on its loop

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PRIVATE_PREFIX = "__devserver_dynamic__."
EMPTIED_PATIENCE = 2.0  # seconds an emptied module may stay empty before it counts as meant to be
PYC_RACY_NS = 2_000_000_000  # a source younger than this may share its mtime second with a stale .pyc


class NotFound(Exception):
    """No servable module for this name (the message says why)."""


class ImportFailed(Exception):
    """The module exists but raised while importing; carries the traceback text."""

    def __init__(self, name: str, text: str, report: ErrorReport | None = None) -> None:
        super().__init__(f"{name} failed to import")
        self.name = name
        self.traceback = text
        self.report = report  # the user's frames (tracebacks.import_report), for the 500 page and the dashboard


def saving(st: os.stat_result, seconds: float, now: float) -> bool:
    """True if a module file in state ``st`` may still be being saved: modified less than ``seconds`` ago.

    An empty file counts for EMPTIED_PATIENCE: an editor that truncates, then
    writes, leaves it empty in between, and a busy machine can hold the two
    apart for longer than ``seconds`` (a request that caught it then answered
    404 "no application", tests/test_reload_under_load.py).
    """
    return now - st.st_mtime < (EMPTIED_PATIENCE if st.st_size == 0 else seconds)


class DynamicModules:
    """The dynamic folder's modules, imported on first use, purged on change."""

    def __init__(self, folder: str, *, follow_saves: bool = True) -> None:
        self.folder = os.path.realpath(folder)
        self.follow_saves = follow_saves  # False with --no-reload: what was imported keeps serving
        self._lock = threading.RLock()
        self._apps: dict[str, ServedApp] = {}
        self._stamps: dict[str, filestamp.Stamp] = {}  # the file of each imported module, as it was imported
        self._own = OwnModules(self._holds)  # which of sys.modules are the folder's (asked at every load)
        if self.folder not in sys.path:
            # Apps import their sibling modules by plain name, as a script's folder allows.
            sys.path.insert(0, self.folder)

    def file_of(self, name: str) -> str | None:
        """The module file for ``name`` if it lies inside the folder."""
        if not _NAME.match(name):
            return None
        path = os.path.join(self.folder, name + ".py")
        real = os.path.realpath(path)
        if os.path.dirname(real) != self.folder and not real.startswith(self.folder + os.sep):
            return None
        return real if os.path.isfile(real) else None

    def changed_within(self, name: str, seconds: float) -> bool:
        """True if module ``name``'s file may still be being saved (see :func:`saving`)."""
        file = self.file_of(name)
        try:
            return file is not None and saving(os.stat(file), seconds, time.time())
        except OSError:
            return False

    def _holds(self, file: str) -> bool:
        """True if ``file`` (a module's) lies inside the folder."""
        return os.path.realpath(file).startswith(self.folder + os.sep)

    def load(self, name: str) -> ModuleType:
        """Import (or reuse) module ``name`` from the folder.

        A page whose name is taken by a module from elsewhere (``site.py``
        and the standard ``site``, say) is imported under a private key, so
        the page is served and the other module is left untouched.
        """
        file = self.file_of(name)
        if file is None:
            raise NotFound(f"No module named {name!r} in the dynamic folder")
        with self._lock:
            key = name
            module = sys.modules.get(name)
            if module is not None and not self._own.owned(name, module):
                key = PRIVATE_PREFIX + name
                module = sys.modules.get(key)
            if module is not None:
                return module
            spec = importlib.util.spec_from_file_location(key, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            stamp = filestamp.take(file)
            if stamp is not None and time.time_ns() - stamp.mtime_ns < PYC_RACY_NS:
                # A .pyc records its source's mtime in whole seconds: one written for a same-size save
                # in this same second (by another worker, say) would pass Python's check.  Compile afresh.
                with contextlib.suppress(OSError, ValueError):
                    os.unlink(importlib.util.cache_from_source(file))
            try:
                spec.loader.exec_module(module)
            except BaseException as exc:  # noqa: BLE001 - whatever the user's module raises is its import error
                sys.modules.pop(key, None)
                raise ImportFailed(name, traceback.format_exc(), import_report(exc)) from None
            if stamp is not None:
                self._stamps[file] = stamp
            self._stamp_siblings()
            return module

    def _stamp_siblings(self) -> None:
        """Stamp the folder's modules that an app imported by plain name."""
        for _, module in self._own.items():
            file = module.__file__
            if file and file not in self._stamps:
                stamp = filestamp.take(file)
                if stamp is not None:
                    self._stamps[file] = stamp

    def cached(self, name: str, attribute: str = "application") -> ServedApp | None:
        """The app if it is loaded and none of the folder's modules changed on disk since.

        A few stat() calls: they make "the next request after a save runs the
        new code" true even before the watcher's message arrives.  A changed
        module's bytecode is removed, since a same-size save within the same
        second would otherwise pass Python's own .pyc check.
        """
        if not self.follow_saves:
            return self._apps.get(f"{name}:{attribute}")
        changed = []
        for file, stamp in list(self._stamps.items()):  # a copy: a pool thread importing a module adds to it
            now = filestamp.check(file, stamp)
            if now is None:
                changed.append(file)
            elif now is not stamp:
                self._stamps[file] = now
        if changed:
            for file in changed:
                self._stamps.pop(file, None)
                with contextlib.suppress(OSError, ValueError):
                    os.unlink(importlib.util.cache_from_source(file))
            self.purge(self.loaded())
            return None
        return self._apps.get(f"{name}:{attribute}")

    def app(self, name: str, attribute: str = "application") -> ServedApp:
        """The WSGI callable ``attribute`` of module ``name``.

        The original zero-argument form, ``application()`` returning a string,
        is wrapped into a WSGI app.
        """
        key = f"{name}:{attribute}"
        cached = self._apps.get(key)
        if cached is not None:
            return cached  # purge() empties this cache, so a hit is never stale
        with self._lock:
            module = self.load(name)
            target = getattr(module, attribute, None)
            if target is None:
                # Perhaps imported mid-save (the file cut short): not kept, or it would answer this until the
                # next reload message, and none comes when that save was the last.
                self.purge([name])
                raise NotFound(f"Module {name!r} has no {attribute!r}")
            if not callable(target):
                raise NotFound(f"{name}.{attribute} is not callable")
            app = zero_argument_app(target) if _takes_no_arguments(target) else devmode.develop(target)
            # An ASGI app runs on the loop; anything else callable is taken for WSGI.
            served: ServedApp = ASGIApplication(app, key) if is_asgi(app) else cast(WSGIApp, app)
            self._apps[key] = served
            return served

    def purge(self, names: Iterable[str]) -> list[str]:
        """Forget modules so their next use imports them afresh; returns those purged."""
        purged = []
        with self._lock:
            for name in names:
                for key in (name, PRIVATE_PREFIX + name):
                    if self._own.owned(key, sys.modules.get(key)):
                        del sys.modules[key]
                        purged.append(name)
            self._apps.clear()
            # Stamps outlive a purge: the next request still compares the files with what was
            # imported, and removes bytecode that a same-second same-size save left stale.
            importlib.invalidate_caches()
        return purged

    def loaded(self) -> list[str]:
        """Names of the dynamic modules currently imported."""
        return [key.removeprefix(PRIVATE_PREFIX) for key, _ in self._own.items()]


def zero_argument_app(function: Callable[[], object]) -> WSGIApp:
    """Wrap the zero-argument ``application()`` returning a string into a WSGI app (200 text/plain)."""

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> list[bytes]:
        result = function()
        body = result if isinstance(result, bytes) else str(result).encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _takes_no_arguments(target: Callable[..., object]) -> bool:
    """True for the zero-argument ``application()``: callable with nothing, not with (environ, start_response)."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return False
    try:
        signature.bind(None, None)
        return False
    except TypeError:
        pass
    try:
        signature.bind()
    except TypeError:
        return False
    return True
