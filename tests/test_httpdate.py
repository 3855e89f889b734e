"""devserver.http.dates writes the dates email.utils.formatdate(usegmt=True) writes, without importing it."""

from __future__ import annotations

import subprocess
import sys
from email.utils import formatdate

from hypothesis import given
from hypothesis import strategies as st

from devserver.http.dates import imf_fixdate


def test_rfc_example() -> None:
    assert imf_fixdate(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"  # RFC 9110 §5.6.7


@given(st.floats(min_value=0, max_value=253402300799, allow_nan=False))
def test_same_as_email_utils(seconds: float) -> None:
    assert imf_fixdate(seconds) == formatdate(seconds, usegmt=True)


def test_a_worker_imports_no_email_package() -> None:
    """What every worker imports before the fork leaves the email package out (10-20 ms of each start)."""
    code = "import sys, devserver.worker.process, devserver.handlers.livereload, devserver.console.log; " \
           "print(sorted(m for m in sys.modules if m == 'email' or m.startswith('email.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
