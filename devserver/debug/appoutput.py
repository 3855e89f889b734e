"""What apps print, on the plain console: control characters escaped, a vanished reader ignored.

Under the dashboard and with ``--log-format json`` a worker turns its
stdout/stderr into log events (worker.py).  On the plain text console they
stay the terminal's, but an app that prints request data (``print(query)``)
must not send the terminal an escape sequence from the request: each write
goes out with its control characters escaped.  A reader that went away
(``devserver | head``) does not make the app's print() raise.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO, cast

from devserver.kit.safetext import escape_controls


class EscapingWriter(io.TextIOBase):
    """A text stream that writes to ``stream`` with control characters escaped."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._gone = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(escape_controls(text))
                if "\n" in text:
                    self._stream.flush()
            except (OSError, ValueError):  # EPIPE, a closed stream: nobody reads any more
                self._gone = True
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._gone = True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()


def escape_app_output() -> None:
    """Make this process's sys.stdout and sys.stderr escape control characters."""
    sys.stdout = cast(TextIO, EscapingWriter(sys.stdout))  # a text stream, as io.TextIOBase is
    sys.stderr = cast(TextIO, EscapingWriter(sys.stderr))
