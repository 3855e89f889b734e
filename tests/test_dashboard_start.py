"""The dashboard's start: what it does after its first paint still happens."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

# In a process of its own: settling the collector freezes every object of the process for good.
SCRIPT = """
import asyncio, gc, time
from devserver.ipc.config import Config
from tui.app import DashboardApp
from tui.feed import FULL_GC_THRESHOLD

async def main():
    app = DashboardApp(Config(), tune_gc=True)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 10
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
            await pilot.pause(0.02)
        print(gc.get_freeze_count() > 0, gc.get_threshold()[2] == FULL_GC_THRESHOLD)

asyncio.run(main())
"""


def test_the_collector_is_settled_once_the_dashboard_is_up() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
