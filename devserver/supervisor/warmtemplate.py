"""What the warm template process imports before it forks standbys (warm.py).

The template is a multiprocessing forkserver; this module is its preload.
Its spec comes in the environment (``DEVSERVER_WARM_TEMPLATE``, JSON): the
third-party modules the app uses, the project folder and, for Django, the
module to import now (the WSGI module: ``django.setup()`` and the
middleware, not the URLconf, which Django imports on first use).

A fork of a set-up template only imports the URLconf and views: a restart
costs a fork and those imports, not an interpreter start and a
``django.setup()``.  The project files the template read are stamped before
they are read (an audit hook on ``open``: a source or its ``.pyc``) and
written to the spec's report file; the supervisor compares them with the
disk before each restart and builds a new template when one changed (a
model, the settings), since every fork would carry the old code.

A failed setup leaves Django half set up, which no fork can undo: the
template then reports the failure and exits; the supervisor starts
standbys the slow way until one of those files changes.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from typing import TypedDict

from devserver.apps import appspec
from devserver.apps.projectfiles import ProjectFiles
from devserver.kit import filestamp, interpreter

ENV = "DEVSERVER_WARM_TEMPLATE"
# What every worker imports: in the template, a standby has them for free.
DEVSERVER_MODULES = ("devserver.worker.process", "devserver.apps.project", "devserver.handlers.livereload", "devserver.handlers.inject",
                     "devserver.cli", "devserver.supervisor.warm")


class TemplateSpec(TypedDict):
    """What the template is to do, from the supervisor (forktemplate.Template) through its environment, as JSON."""

    names: list[str]  # third-party modules to preload
    folder: str  # the project folder
    setup: str | None  # a module to import once preloaded (Django's WSGI module)
    report: str  # where to write what it read (the file stamps) and whether the setup failed


StampFields = list[int | str | None]  # a file stamp as JSON: size, mtime_ns, digest in hex (None: not hashed)


class TemplateReport(TypedDict):
    """What the template wrote once loaded (the report file, as JSON)."""

    failed: bool  # the setup module raised
    files: dict[str, StampFields]  # every project file it read


def encode(stamp: filestamp.Stamp) -> StampFields:
    return [stamp.size, stamp.mtime_ns, stamp.digest.hex() if stamp.digest else None]


def decode(fields: StampFields) -> filestamp.Stamp:  # as encode() made them, back from JSON
    size, mtime_ns, digest = fields
    assert isinstance(size, int) and isinstance(mtime_ns, int), fields  # our own file: only a bug gets here
    return filestamp.Stamp(size, mtime_ns, bytes.fromhex(digest) if isinstance(digest, str) else None)


class _Reads:
    """Stamps of the project files opened while active (a source is stamped when its .pyc is opened)."""

    def __init__(self, rules: ProjectFiles) -> None:
        self.rules = rules
        self.stamps: dict[str, filestamp.Stamp] = {}
        self.active = True
        interpreter.on_open(self._audit)  # cannot be removed: it goes quiet once the setup is done

    def _audit(self, args: tuple[object, ...]) -> None:
        if not self.active:
            return
        self.active = False  # a stamp hashing a young file opens it too
        try:
            self._opened(args)
        finally:
            self.active = True

    def _opened(self, args: tuple[object, ...]) -> None:
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return
        if path.endswith(".pyc") and "__pycache__" in path:
            try:
                path = importlib.util.source_from_cache(path)
            except ValueError:
                return
        self.add(os.path.abspath(path))

    def add(self, path: str) -> None:
        if path not in self.stamps and self.rules.owns(path):
            stamp = filestamp.take(path)
            if stamp is not None:
                self.stamps[path] = stamp


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


def build(spec: TemplateSpec) -> None:
    folder = spec["folder"]
    preload([*spec["names"], *DEVSERVER_MODULES], folder)
    failed = False
    reads = _Reads(ProjectFiles(folder))
    setup = spec.get("setup")
    if setup:
        appspec.put_on_path(folder)
        try:
            importlib.import_module(setup)
        except BaseException:  # noqa: BLE001 - whatever the project raises: no usable template
            failed = True
    reads.active = False
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file:
            reads.add(file)  # a module read some other way: stamped late, but stamped
    report: TemplateReport = {"failed": failed, "files": {path: encode(stamp) for path, stamp in reads.stamps.items()}}
    temporary = spec["report"] + ".tmp"
    with open(temporary, "w") as f:
        json.dump(report, f)
    os.replace(temporary, spec["report"])
    if failed:
        os._exit(3)
    # What the template holds stays out of the forks' garbage collections: a collection would
    # touch (and so copy) every page the forks share with the template.
    gc.collect()
    gc.freeze()


def _from_environment() -> None:
    text = os.environ.pop(ENV, None)
    if text:
        build(json.loads(text))


_from_environment()
