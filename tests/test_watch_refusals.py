"""A watch the system refuses is one line with the fix; other errors are not mistaken for it."""

from __future__ import annotations

import errno

from devserver.reload.watcher import refusal


def test_watchfiles_refusals_get_the_limit_and_the_fix() -> None:
    # RustNotify() raises OSError for the first watches; watch() a RuntimeError subclass for a folder made later.
    at_start = OSError("OS file watch limit reached. (Error { kind: MaxFilesWatch, paths: [\"/p\"] })")
    later = RuntimeError("error in underlying watcher: OS file watch limit reached.")
    for exc in (at_start, later, OSError(errno.ENOSPC, "No space left on device")):
        line = refusal(exc)
        assert line is not None and "\n" not in line
        assert "inotify watch limit" in line and "sysctl fs.inotify.max_user_watches=524288" in line
    instances = refusal(OSError(errno.EMFILE, "Too many open files"))
    assert instances is not None and "fs.inotify.max_user_instances" in instances


def test_other_errors_are_not_refusals() -> None:
    assert refusal(FileNotFoundError("No path was found.")) is None
    assert refusal(PermissionError(errno.EACCES, "Permission denied")) is None
