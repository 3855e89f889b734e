"""Template engines' caches in a worker: which engine read a project file, and how to make it read it again.

Template engines keep compiled templates in the process: Jinja in its
``Environment.cache``, Django in its cached template loader, Bottle in
``bottle.TEMPLATES``.  Rebuilding the app to drop them costs a factory call
(Flask) or a warm restart (Django); clearing them costs microseconds, and
is what each framework's own reloader does (Django's runserver calls
``django.template.autoreload.reset_loaders()``).  A file is a template when
the code that opened it is one of the engines' loaders (:data:`READERS`):
known when the file is opened, from the frame that opened it, with no
configuration.  A file the app reads in its own code (a YAML config, a
``.env``, a template string it compiles itself) is not: its save rebuilds
the app, which reads it again.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Protocol

# The module (or package) of the code that opened the file -> the engine that read it.
READERS: tuple[tuple[str, str], ...] = (("jinja2", "jinja2"), ("django.template", "django"), ("bottle", "bottle"))
# Modules that open files for their caller (Path.read_text, codecs.open): the opener is the frame above.
PASS_THROUGH = frozenset({"pathlib", "codecs", "io", "_pyio"})
FRAMES = 16  # frames looked at above the open: enough for a loader that a few layers call


class _Clearable(Protocol):
    def clear(self) -> None: ...


class _JinjaEnvironment(Protocol):
    """What is cleared of a ``jinja2.Environment`` (jinja2 is the app's, never imported here)."""

    @property
    def cache(self) -> _Clearable | None: ...


def _module(frame: FrameType) -> str:
    return frame.f_globals.get("__name__") or ""


def _engine(module: str) -> str | None:
    return next((engine for prefix, engine in READERS if module == prefix or module.startswith(prefix + ".")), None)


def _environment(frame: FrameType | None) -> _JinjaEnvironment | None:
    """The Jinja ``Environment`` that is loading the template, from the loader frames' arguments."""
    jinja2 = sys.modules.get("jinja2")
    if jinja2 is None:
        return None
    for _ in range(FRAMES):
        if frame is None:
            return None
        if _engine(_module(frame)) == "jinja2" or "environment" in frame.f_code.co_varnames:
            local = frame.f_locals
            for name in ("environment", "self"):
                if isinstance(local.get(name), jinja2.Environment):
                    return local[name]
        frame = frame.f_back
    return None


def _clear_jinja(caches: TemplateCaches) -> None:
    for environment in list(caches.jinja):
        if environment.cache is not None:
            environment.cache.clear()


def _clear_django(caches: TemplateCaches) -> None:
    from django.template.autoreload import reset_loaders

    reset_loaders()  # every DjangoTemplates backend's loaders, the cached loader's templates with them


def _clear_bottle(caches: TemplateCaches) -> None:
    sys.modules["bottle"].TEMPLATES.clear()


CLEARERS: dict[str, Callable[[TemplateCaches], None]] = {
    "jinja2": _clear_jinja, "django": _clear_django, "bottle": _clear_bottle}


class TemplateCaches:
    """The template files one worker's app read, by engine, and the Jinja environments that hold them."""

    def __init__(self) -> None:
        self.engines: dict[str, str] = {}  # template file -> the engine that read it
        self.jinja: weakref.WeakSet[_JinjaEnvironment] = weakref.WeakSet()  # an app rebuilt makes a new one; the old goes

    def opened(self, file: str, frame: FrameType | None) -> bool:
        """``file`` is being opened from ``frame`` (the caller of the audit hook): True if an engine reads it."""
        opener = frame
        for _ in range(FRAMES):
            if opener is None:
                return False
            module = _module(opener)
            if not module.startswith("devserver") and module.partition(".")[0] not in PASS_THROUGH:
                break
            opener = opener.f_back
        engine = _engine(_module(opener)) if opener is not None else None
        if engine is None:
            return False
        if engine == "jinja2":
            environment = _environment(opener)
            if environment is None:
                return False  # an environment we could not find would keep the old template: rebuild instead
            self.jinja.add(environment)
        self.engines[file] = engine
        return True

    def templates(self, files: Iterable[str]) -> list[str]:
        return [file for file in files if file in self.engines]

    def clear(self, files: Iterable[str]) -> list[str]:
        """Make the engines that read ``files`` read them again at their next use; the engines cleared."""
        engines = sorted({self.engines[file] for file in files if file in self.engines})
        for engine in engines:
            CLEARERS[engine](self)
        return engines
