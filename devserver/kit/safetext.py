"""Text from requests and apps, made safe to show on a terminal.

Any web page can make the developer's browser send a request to 127.0.0.1,
so a target, a header or a line an app prints is attacker-controlled: an
escape sequence in it must never reach the terminal raw (it could clear the
screen, rename the window, or write to the clipboard).
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, and C1 controls (ESC [ alone is CSI on some terminals: 0x9b).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def escape_controls(text: str, *, multiline: bool = True) -> str:
    """``text`` with control characters shown as ``\\xNN``.

    ``multiline`` keeps newlines and tabs (tracebacks, bodies); without it a
    value is kept to one line (targets, header values, log lines).
    """
    if text.isprintable():  # every character escaped here is unprintable: the usual text is seen once, in C
        return text
    pattern = _CONTROL if multiline else _CONTROL_ONE_LINE
    return pattern.sub(_escape, text)
