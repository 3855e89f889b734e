"""HTTP dates as servers send them: IMF-fixdate (RFC 9110 §5.6.7).

Written here rather than with ``email.utils.formatdate``: the email package
costs every start 10-20 ms of imports, before the first worker can answer,
for one line of formatting.  Fixed English names: the format is not the
locale's (an app may call ``locale.setlocale``).
"""

from __future__ import annotations

import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def imf_fixdate(seconds: float) -> str:
    """``seconds`` since the epoch as an IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    t = time.gmtime(seconds)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
