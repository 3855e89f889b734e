"""The app frame that ran a query, a call or a render: "catalog/views.py:40", relative to the project."""

from __future__ import annotations

import os
import sysconfig
from types import FrameType

from devserver.kit import interpreter

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # devserver/ itself
_LIBRARIES = tuple({os.path.realpath(p) + os.sep for p in {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}})
_roots: tuple[str, ...] = (os.getcwd() + os.sep,)
_seen: dict[str, str] = {}  # a code object's file -> its path relative to the project ("": not the app's)


def set_roots(*roots: str) -> None:
    """The folders whose files are the app's (the project, the dynamic folder): the first that holds a file names it."""
    global _roots
    _roots = tuple(os.path.realpath(root) + os.sep for root in roots if root)
    _seen.clear()


def relative(filename: str) -> str:
    known = _seen.get(filename)
    if known is not None:
        return known
    path = os.path.realpath(filename) if filename[:1] not in ("<", "") else ""
    shown = ""
    if path and not path.startswith(_PACKAGE) and "site-packages" not in path and not path.startswith(_LIBRARIES):
        shown = next((path[len(root):] for root in _roots if path.startswith(root)), "")
    if len(_seen) < 4096:
        _seen[filename] = shown
    return shown


def app_frame(skip: int = 2) -> str:
    """The innermost frame of the app's own files on the calling thread's stack, as "path:line" ("" for none)."""
    frame: FrameType | None = interpreter.stack_frame(skip)
    seen = _seen
    while frame is not None:
        # A frame's module first: reading its code (f_code) is an audited event, which calls every audit hook
        # (the workers have two), about 4k instructions each time; a library's frames, most of the walk, are
        # passed by their module's file alone.  Only frames of the app's modules (or of code without one)
        # have their own file read, which may differ (code compiled from a string, a template's).
        module = frame.f_globals.get("__file__")
        if type(module) is str:
            known = seen.get(module)
            if not (known if known is not None else relative(module)):
                frame = frame.f_back
                continue
        filename = frame.f_code.co_filename
        shown = seen.get(filename)  # known after the first request: no call per frame
        if shown is None:
            shown = relative(filename)
        if shown:
            return f"{shown}:{frame.f_lineno}"
        frame = frame.f_back
    return ""
